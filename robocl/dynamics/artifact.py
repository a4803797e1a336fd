"""A self-describing dynamics-model file (`model.pt`, written by `robocl-train`).

It holds the weights (normalization statistics included), the dynamics settings that rebuild the
network, the robot spec it was trained for (state layout, control period, action bounds), the
training data's fingerprint, train/validation metrics and the robocl version. Reading checks
it before anything runs on it: a damaged file, another format, a newer format or a model for
another robot is one clear line (UsageError), never a traceback or a silently wrong model.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import torch

from robocl.errors import UsageError
from robocl.robots.spec import RobotSpec
from robocl.utils.io import atomic_torch_save

FORMAT = "robocl.model"
VERSION = 1


def file_fingerprint(path: Path | str) -> str:
    """sha256 of the file's bytes (first 16 hex digits): names the model in caches and results."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def save_model(path: Path | str, model: torch.nn.Module, spec: RobotSpec, dynamics: dict[str, Any],
               data: dict[str, Any], metrics: dict[str, Any], extra: dict[str, Any] | None = None) -> Path:
    """Write the artifact atomically (a reader never sees half a file)."""
    from robocl import __version__

    payload = {
        "format": FORMAT, "version": VERSION, "robocl": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "robot": spec.to_dict(), "dynamics": dynamics, "data": data, "metrics": metrics, "extra": extra or {},
        # tensors, and a module's extra state as it is (a hypernetwork's current task and task labels)
        "state_dict": {k: v.detach().cpu() if torch.is_tensor(v) else v for k, v in model.state_dict().items()},
    }
    return atomic_torch_save(payload, path)


def read_model(path: Path | str) -> dict[str, Any]:
    """The artifact's contents, checked for format and version (UsageError naming the file otherwise)."""
    path = Path(path).expanduser()
    where = f"model={path}"
    if not path.is_file():
        raise UsageError(f"{where}: no such model file (a model.pt written by robocl-train)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        detail = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise UsageError(f"{where}: not a readable robocl model file (damaged or truncated: {detail})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UsageError(f"{where}: not a robocl model artifact (no '{FORMAT}' format tag; robocl-train writes one)")
    version = payload.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise UsageError(f"{where}: format version {version} is newer than this robocl reads ({VERSION}); "
                         f"it was written by robocl {payload.get('robocl')}: upgrade robocl")
    for key in ("robot", "dynamics", "state_dict"):
        if not isinstance(payload.get(key), dict):
            raise UsageError(f"{where}: damaged model artifact (its '{key}' entry is missing)")
    return payload


def check_robot(payload: dict[str, Any], spec: RobotSpec, path: Path | str, period: float | None = None) -> None:
    """One line when the model was trained for another robot layout or control period."""
    why = spec.mismatch(payload["robot"], period)
    if why is not None:
        trained = payload["robot"].get("name")
        raise UsageError(f"model={path}: trained for robot {trained!r} with {why.split(' (')[0]}, "
                         f"which does not fit robot={spec.name} ({why.split(' (', 1)[1].rstrip(')')})")


def load_weights(model: torch.nn.Module, payload: dict[str, Any], path: Path | str) -> torch.nn.Module:
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError, ValueError) as exc:
        first = " ".join(str(exc).split())[:160]
        raise UsageError(f"model={path}: its weights do not fit its own dynamics settings ({first})") from None
    return model.eval()
