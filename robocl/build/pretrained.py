"""The nominal-regime model a config plans with: `model=PATH` (a robocl-train artifact) if given, else
the robot's simulator-pretrained model from the cache (`runtime.cache_dir`).

Not a pure factory: on a cache miss `pretrained_model` collects exploration data in the robot's nominal
simulator and trains the model (Lightning, imported only then), then caches it, so every command that
needs the nominal model (robocl-run, -eval, -bench, -ros, ...) gets the same one however it is reached.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import robocl_envs  # noqa: F401  (registers the robocl/* environments)
import torch
from omegaconf import DictConfig, OmegaConf

from robocl.build.models import make_model, model_from_artifact, model_path
from robocl.dynamics.base import DynamicsModel
from robocl.robots.spec import nominal_env, require_simulator
from robocl.sim.data import collect_exploration
from robocl.utils.io import atomic_torch_save

PRETRAIN_VERSION = 1  # bump when exploration or training changes so stale caches are not reused


def cache_key(cfg: DictConfig, env_kwargs: dict[str, Any]) -> str:
    payload = {
        "v": PRETRAIN_VERSION,
        "robot": OmegaConf.to_container(cfg.robot, resolve=True),
        "dynamics": OmegaConf.to_container(cfg.dynamics, resolve=True),
        "env": env_kwargs,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def pretrained_model(cfg: DictConfig, log=print, env_overrides: dict[str, Any] | None = None
                     ) -> tuple[DynamicsModel, dict]:
    """The nominal-regime model: `model=PATH` if given, else loaded from the cache, or trained on
    exploration data in the robot's simulator and cached.

    The simulator is the robot's `nominal_env`; `env_overrides` changes its kwargs (and so the
    cache key), e.g. a different control period for recorded data.
    """
    if model_path(cfg) is not None:
        period = (env_overrides or {}).get("dt")
        return model_from_artifact(cfg, log, None if period is None else float(period))
    require_simulator(cfg.robot, "simulator pretraining of the nominal model (pass model=PATH from robocl-train)")
    nominal_kwargs, shape_action = nominal_env(cfg.robot)
    env_kwargs = {**nominal_kwargs, **(env_overrides or {})}
    path = Path(str(cfg.runtime.cache_dir)) / f"{cfg.robot.name}-{cfg.dynamics.kind}-{cache_key(cfg, env_kwargs)}.pt"
    torch.manual_seed(0)  # the initial weights too: the same settings always pretrain the same model
    model = make_model(cfg)
    if path.exists():
        state = torch.load(path, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        model.eval()
        log(f"loaded pretrained {cfg.dynamics.kind} model from {path}")
        return model, state["info"]
    pre = cfg.dynamics.pretrain
    env = gym.make(str(cfg.robot.env_id), **env_kwargs).unwrapped
    log(f"collecting {pre.episodes}x{pre.steps} exploration steps in the nominal regime")
    data = collect_exploration(env, int(pre.episodes), int(pre.steps), seed=1234, shape_action=shape_action)
    log(f"training {cfg.dynamics.kind} on {len(data)} transitions for {pre.epochs} epochs")
    from robocl.dynamics.training import train_offline  # Lightning: imported only when training

    history = train_offline(model, data, epochs=int(pre.epochs), batch_size=int(pre.batch_size),
                            lr=float(pre.lr), seed=0)
    info = {"transitions": len(data), "final_val_mse": history["val_mse"][-1] if history["val_mse"] else None,
            "train_loss": history["train_loss"]}
    atomic_torch_save({"model": model.state_dict(), "info": info}, path)
    log(f"cached pretrained model at {path}")
    return model, info


def simulator_pretrained_model(cfg: DictConfig, period: float | None = None, log=print) -> DynamicsModel:
    """The robot's simulator-pretrained model (cached) with cfg's dynamics settings, ignoring `model=PATH`:
    the comparison a robocl-train model is measured against. `period`: the data's control period, when it
    is not robot.dt (the nominal env is then built at it, as for recorded data)."""
    sim_cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    sim_cfg.model = None
    other = period is not None and abs(float(period) - float(cfg.robot.dt)) > 1e-12
    return pretrained_model(sim_cfg, log=log, env_overrides={"dt": float(period)} if other else None)[0]
