"""Pieces every simulation experiment shares: pretrained models (cached), controller assembly."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import robocl_envs  # noqa: F401  (registers the robocl/* environments)
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from robocl.continual.base import ContinualStrategy
from robocl.control import Controller
from robocl.data import collect_exploration
from robocl.dynamics.artifact import check_robot, file_fingerprint, load_weights, read_model
from robocl.dynamics.base import DynamicsModel
from robocl.dynamics.hypernet import HyperNetwork
from robocl.errors import UsageError
from robocl.factory import build, load_callable
from robocl.methods import MethodSpec
from robocl.planning.base import CostFn
from robocl.refiners.base import Refiner
from robocl.robots.spec import require_simulator, spec_from_config
from robocl.utils.io import atomic_torch_save

PRETRAIN_VERSION = 1  # bump when exploration or training changes so stale caches are not reused


CODEC_FACTORIES = {
    "planar": "robocl.robots.codec:planar_codec",
    "quadrotor": "robocl.robots.quadrotor:quadrotor_codec",
    "vector": "robocl.robots.vector:vector_codec",
}


def make_codec(cfg: DictConfig):
    """The robot's state codec: `robot.codec_factory` if it names one, else the one of `robot.codec`."""
    spec = cfg.robot.get("codec_factory") or CODEC_FACTORIES.get(str(cfg.robot.get("codec")))
    if spec is None:
        spec_from_config(cfg.robot)  # raises the one-line error naming the accepted codecs
    return load_callable(str(spec), "robot.codec_factory")(cfg.robot)


def make_model(cfg: DictConfig) -> DynamicsModel:
    return build(cfg.dynamics, "dynamics", codec=make_codec(cfg))


def cache_key(cfg: DictConfig, env_kwargs: dict[str, Any]) -> str:
    payload = {
        "v": PRETRAIN_VERSION,
        "robot": OmegaConf.to_container(cfg.robot, resolve=True),
        "dynamics": OmegaConf.to_container(cfg.dynamics, resolve=True),
        "env": env_kwargs,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def nominal_env(robot: DictConfig) -> tuple[dict[str, Any], Any]:
    """(env kwargs, exploration shaping) of a robot's nominal simulator, as every runner builds it,
    so they share one cached pretrained model (the kwargs are part of its cache key)."""
    if str(robot.name) == "quadrotor":
        from robocl.robots.quadrotor import hold_altitude

        return {"control_hz": float(robot.control_hz)}, hold_altitude()
    return {"dt": float(robot.dt)}, None


def model_path(cfg: DictConfig) -> Path | None:
    """`model=PATH`: a robocl-train artifact to use as the nominal model instead of simulator pretraining."""
    value = OmegaConf.select(cfg, "model")
    return Path(str(value)).expanduser() if value not in (None, "") else None


def adopt_model_settings(cfg: DictConfig, period: float | None = None) -> dict | None:
    """Check `model=PATH` against the robot (one line if it does not fit) and make `cfg.dynamics` the
    artifact's, so strategies and planners see the model that will run. Returns the artifact or None."""
    path = model_path(cfg)
    if path is None:
        return None
    payload = read_model(path)
    check_robot(payload, spec_from_config(cfg.robot), path, period)
    with open_dict(cfg):
        cfg.dynamics = OmegaConf.create(payload["dynamics"])
        if OmegaConf.select(cfg, "refiner.data") is not None:
            # robocl's simulator is not the user's robot: AFM regimes are simulated in the learned model
            cfg.refiner.data.simulator = "model"
    return payload


def model_from_artifact(cfg: DictConfig, log=print, period: float | None = None) -> tuple[DynamicsModel, dict]:
    path = model_path(cfg)
    payload = adopt_model_settings(cfg, period)
    model = load_weights(make_model(cfg), payload, path)
    info = {"model": str(path), "model_fingerprint": file_fingerprint(path), "trained_for": payload["robot"]["name"],
            "data_fingerprint": payload["data"].get("fingerprint"), "metrics": payload.get("metrics", {})}
    tasks = adopt_task_labels(model, payload, path)
    if tasks:
        info.update({"tasks": tasks, "nominal_task": tasks[0]})
    log(f"loaded {cfg.dynamics.kind} model {path} (trained by robocl-train on {payload['data'].get('transitions')} "
        "transitions" + (f"; {len(tasks)} tasks by regime label, planning on the nominal task {tasks[0]!r}"
                         if tasks else "") + ")")
    return model, info


def adopt_task_labels(model: DynamicsModel, payload: dict, path: Path) -> list[str]:
    """A multi-task artifact (robocl-train dynamics=hypernet): name the model's embeddings by their regime
    labels and put it on the nominal task's (embedding 0), the one every command plans with."""
    tasks = (payload.get("extra") or {}).get("tasks")
    if not tasks or not isinstance(model, HyperNetwork):
        return []
    if (not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks)
            or len(tasks) > model.num_tasks or payload["extra"].get("nominal_task") != tasks[0]):
        raise UsageError(f"model={path}: damaged model artifact (its task labels do not fit its "
                         f"{model.num_tasks} task embeddings)")
    model.set_task_labels(tasks)
    model.set_task(0)
    return list(tasks)


def load_model(path: str | Path) -> tuple[DynamicsModel, dict]:
    """A robocl-train `model.pt` as a ready model, with no config: the robot spec and dynamics settings
    it carries rebuild it (a hypernetwork is put on its nominal task). Returns (model, info); info["robot"]
    is the robot spec it was trained for (state and command names, control period, action box, safe action)."""
    payload = read_model(path)
    cfg = OmegaConf.create({"model": str(path), "robot": payload["robot"], "dynamics": payload["dynamics"]})
    model, info = model_from_artifact(cfg, log=lambda *_: None)
    return model, {**info, "robot": payload["robot"]}


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


def nominal_models(cfg: DictConfig, methods: list[MethodSpec], sink: Any, progress: Any
                   ) -> tuple[DynamicsModel, Any]:
    """The pretrained nominal model, and the AFM refiner network trained against it when a method
    refines (None otherwise): built once here, with progress, before any unit starts, and handed to
    every unit (never trained per worker); their training info goes into results.json."""
    base_model, pre_info = pretrained_model(cfg, log=progress.log)
    sink.extra["pretrain"] = pre_info
    refiner_net = None
    if any(m.refine for m in methods):
        from robocl.refiners.afm_train import ensure_checkpoint

        refiner_net, info, path = ensure_checkpoint(cfg.refiner, cfg.robot, base_model, log=progress.log,
                                                    progress=progress)
        sink.extra["afm_train"] = {"checkpoint": str(path), **{k: v for k, v in info.items() if k != "history"}}
    return base_model, refiner_net


def refiner_stats(refiner: Refiner) -> dict[str, Any]:
    """Regime switches the AFM refiner detected (and raw actions it executed after them)."""
    if getattr(refiner, "name", "") != "afm":
        return {}
    return {"afm_switches": refiner.switches, "afm_raw_after_switch": refiner.raw_after_switch}


def make_controller(cfg: DictConfig, method: MethodSpec, base_model: DynamicsModel, cost: CostFn,
                    seed: int, refiner_net: Any = None) -> Controller:
    """A fresh controller for one run: its own copy of the model, strategy, planner and refiner
    (`refiner_net`: the AFM network built before fan-out; without it the refiner loads its checkpoint).

    The global torch RNG is re-seeded too (bootstrap resampling in online learning draws from it),
    so a run's result does not depend on which runs came before it in the same process.
    """
    torch.manual_seed(seed)
    model = copy.deepcopy(base_model).eval()
    strategy = (build(cfg.continual, "continual", model=model, seed=seed) if method.online
                else ContinualStrategy(model))
    planner_factory = load_callable(f"robocl.planning.factory:{method.planner}")
    planner = planner_factory(cfg.planner, dynamics=model.step, cost=cost, robot=cfg.robot, seed=seed,
                              reset_particles=model.reset_particles)
    refiner = (build(cfg.refiner, "refiner", robot=cfg.robot, model=model, seed=seed,
                     net=None if refiner_net is None else copy.deepcopy(refiner_net))
               if method.refine else Refiner())
    return Controller(model, planner, strategy, refiner, safe_action=np.asarray(cfg.robot.safe_action, float))


def percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def controller_metrics(controller: Controller) -> dict[str, Any]:
    s = controller.stats
    compute = [p + r + lrn for p, r, lrn in zip(s.plan_ms, s.refine_ms, s.learn_ms or [0.0] * len(s.plan_ms))]
    median_compute = percentile(compute, 50)
    return {
        "plan_ms_median": percentile(s.plan_ms, 50),
        "plan_ms_p95": percentile(s.plan_ms, 95),
        "refine_ms_median": percentile(s.refine_ms, 50),
        "learn_ms_median": percentile(s.learn_ms, 50),
        "control_hz": 1000.0 / median_compute if median_compute else None,
        "dyn_mse": float(np.mean(s.pred_sq_err)) if s.pred_sq_err else None,
        "safety_events": len(s.safety_events),
    }
