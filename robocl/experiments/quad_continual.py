"""Quadrotor reference tracking under regime changes; frozen vs online learned-model MPPI.

Each (method, seed) is one episode of `task.name` (hover / figure_eight / waypoints); inside
`task.intervention` the physical regime (`task.physics`) and command gains (`task.gains`, in
sequence) are applied, and the nominal regime returns after the window.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
from omegaconf import DictConfig, OmegaConf

from robocl import config_check as check
from robocl.cli.app import UsageError
from robocl.eval.loggers import make_logger
from robocl.eval.plots import plot_tracking
from robocl.eval.sink import ResultSink
from robocl.experiments.common import controller_metrics, make_controller, pretrained_model
from robocl.methods import parse_method
from robocl.planning.tracking import ReferenceTrackingCost
from robocl.robots.quadrotor import hold_altitude
from robocl.tasks.waypoints import GainSchedule
from robocl.tracking_rollouts import run_tracking_episode

TASKS = ("hover", "figure_eight", "waypoints")


def regime_params(cfg: DictConfig):
    from robocl_envs.quadrotor import QuadParams

    phys = OmegaConf.to_container(cfg.task.physics, resolve=True) if cfg.task.get("physics") else {}
    try:
        return QuadParams(**phys)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"task.physics: {exc}") from None


def validate(cfg: DictConfig) -> dict[str, Any]:
    check.check_common(cfg)
    name = str(check.get(cfg, "task.name"))
    if name not in TASKS:
        raise UsageError(f"task.name={name}: no such quadrotor task; accepted: {', '.join(TASKS)}")
    hz = check.number(cfg, "robot.control_hz", lo=1, hi=500)
    if abs(float(cfg.robot.dt) * hz - 1.0) > 1e-6:
        raise UsageError(f"robot.dt={cfg.robot.dt}: must equal 1/robot.control_hz ({1.0 / hz:g})")
    return {
        "methods": [parse_method(m) for m in check.string_list(cfg, "methods")],
        "gains": check.pair_list(cfg, "task.gains", dim=4),
        "params": regime_params(cfg),
        "seeds": check.int_list(cfg, "seeds"),
        "task": name,
        "control_hz": hz,
    }


def _regime_schedule(spec: dict[str, Any], window: list[float]):
    """fraction -> (label, apply(env)): physics + gains inside the window, nominal outside."""
    from dataclasses import replace

    from robocl_envs.quadrotor import QuadParams

    gains = GainSchedule(spec["gains"], window)
    shifted = spec["params"]

    def regime_at(fraction: float):
        inside = window[0] <= fraction < window[1]
        params = replace(shifted, gains=gains.at(fraction)) if inside else QuadParams()
        label = "nominal" if params == QuadParams() else "regime" + gains.label(fraction).replace("nominal", "")
        return label, lambda env, p=params: env.set_params(p)

    return regime_at


def run(cfg: DictConfig, run_dir: Path, progress, sink: ResultSink) -> None:
    from robocl_envs.quad_tasks import make_task

    spec = validate(cfg)
    env_kwargs = {"control_hz": spec["control_hz"], "task": spec["task"]}
    base_model, pre_info = pretrained_model(cfg, {"control_hz": spec["control_hz"]}, log=progress.log,
                                            shape_action=hold_altitude())
    sink.extra["pretrain"] = pre_info
    logger = make_logger(cfg, run_dir)
    env = gym.make(str(cfg.robot.env_id), **env_kwargs).unwrapped
    reference = make_task(spec["task"])
    horizon = int(cfg.planner.horizon)
    regime_at = _regime_schedule(spec, list(cfg.task.intervention))
    traces: dict[str, Any] = {}
    for method in spec["methods"]:
        for seed in spec["seeds"]:
            tags = {"method": method.name, "seed": seed, "task": spec["task"]}
            cost = ReferenceTrackingCost(horizon)
            controller = make_controller(cfg, method, base_model, cost, seed)
            steps = int(round(reference.duration * spec["control_hz"]))
            bar = progress.add_task(f"{method.name} {spec['task']} s{seed}", total=steps, status="")

            def on_step(k: int, row: dict[str, Any], bar=bar, ctl=controller, tags=tags) -> None:
                plan = ctl.stats.plan_ms[-1] if ctl.stats.plan_ms else 0.0
                progress.update(bar, completed=k + 1,
                                status=f"{row['regime']:<14} err {row['error']:.3f} m  plan {plan:5.1f} ms")
                logger.log_step({**tags, **row})

            metrics, trace = run_tracking_episode(env, controller, cost, reference, reference.duration, horizon,
                                                  seed, regime_at, on_step)
            row = {**tags, **metrics, **controller_metrics(controller)}
            sink.add_run(row)
            logger.log_run(row)
            if seed == spec["seeds"][0]:
                traces[method.name] = trace
                plot_tracking(traces, run_dir / "tracking.png")
    logger.finish()
