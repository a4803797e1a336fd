"""Config -> dynamics model: the robot's state codec, a fresh model of `cfg.dynamics`, and a
robocl-train artifact (`model=PATH`) checked against the robot and loaded as a ready model."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from robocl.build.factory import build
from robocl.dynamics.artifact import check_robot, file_fingerprint, load_weights, read_model
from robocl.dynamics.base import DynamicsModel
from robocl.dynamics.hypernet import HyperNetwork
from robocl.errors import UsageError
from robocl.robots.spec import spec_from_config
from robocl.utils.imports import load_callable

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
