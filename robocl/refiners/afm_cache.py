"""Where a trained AFM network lives and how it is read back: no data generation, no training.

A network is trained against one nominal model (its weights' fingerprint is in the key) with one refiner
and robot setting, and cached as `afm-<robot>-<key>.pt` under `refiner.cache_dir` (= `runtime.cache_dir`).
`robocl.refiners.afm:from_config` (the factory) only reads it here; `robocl.refiners.afm_train` writes it,
called through a cache-filling step of the commands and runners (`robocl.build.refiners.ensure_refiner`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from robocl.refiners.afm import AFMNet, AFMShape
from robocl.utils.plain import plain

AFM_VERSION = 1  # bump when data generation or the network changes so stale caches are not reused
RUNTIME_KEYS = ("factory", "cache_dir", "solver", "steps", "threshold", "cooldown", "switch_factor",
                "level_halflife", "with_learner")  # inference-time settings: not in the cache key


def make_shape(node: Any, codec: Any) -> AFMShape:
    return AFMShape(codec.feature_dim, codec.action_dim, codec.target_dim, int(node.context_size),
                    int(node.hidden), int(node.embed))


def model_fingerprint(model: torch.nn.Module) -> str:
    """Hash of the nominal model's weights: the refiner is trained against this exact model."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def cache_path(node: Any, robot: Any, model: torch.nn.Module) -> Path:
    payload = {"v": AFM_VERSION, "refiner": {k: v for k, v in plain(node).items() if k not in RUNTIME_KEYS},
               "robot": plain(robot), "model": model_fingerprint(model)}
    key = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return Path(str(node.cache_dir)) / f"afm-{robot.name}-{key}.pt"


def load_net(path: Path) -> tuple[AFMNet, dict[str, Any]]:
    state = torch.load(path, map_location="cpu", weights_only=False)
    net = AFMNet(AFMShape(**state["shape"]))
    net.load_state_dict(state["net"])
    return net.eval(), state["info"]


def missing(path: Path, robot: Any) -> str:
    """The one line for a factory that finds no trained network (it never trains one itself)."""
    return (f"refiner=afm: no trained refiner for robot {robot.name}'s nominal model (none cached at {path}); "
            "robocl-run, robocl-eval and robocl-ros with an afm method, and robocl-train refiner=afm, train it "
            "before they build, or `python -m robocl.cli.afm_train` with the same overrides does "
            "(e.g. experiment=ugv_afm)")
