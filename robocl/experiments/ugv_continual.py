"""Main job: a UGV drives waypoint courses while its actuation changes; frozen vs online model.

Each (method, course, seed) is one episode: the nominal-pretrained model plans with MPPI;
interventions from `task.gains` switch on/off by mission progress (`task.intervention`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import robocl_envs  # noqa: F401  (registers the robocl/* environments)
from omegaconf import DictConfig

from robocl.build import checks as check
from robocl.build.controller import excitation_spec, excite, make_controller
from robocl.build.methods import parse_methods
from robocl.errors import UsageError
from robocl.eval.plots import plot_paths
from robocl.eval.sink import ResultSink
from robocl.experiments.common import controller_metrics, nominal_models, run_logger
from robocl.experiments.fanout import fan_out
from robocl.parallel.units import Unit, UnitContext
from robocl.planning.costs import WaypointCost
from robocl.sim.rollouts import run_waypoint_episode
from robocl.tasks.waypoints import GainSchedule, WaypointMission


def physics_params(cfg: DictConfig):
    from robocl_envs.ugv import UGVParams

    phys = cfg.task.physics
    return UGVParams(
        payload_kg=check.number(cfg, "task.physics.payload_kg", lo=0),
        friction=check.number(cfg, "task.physics.friction", lo=0, lo_open=True),
        wheel_radius_scale=tuple(check.number_list(cfg, "task.physics.wheel_radius_scale", length=2)),
        motor_strength=tuple(check.number_list(cfg, "task.physics.motor_strength", length=2)),
    ) if phys is not None else UGVParams()


def load_courses(cfg: DictConfig) -> dict[str, np.ndarray]:
    from robocl_envs.courses import CourseError, load_course

    courses = {}
    for name in check.string_list(cfg, "task.map"):
        try:
            courses[Path(name).stem] = load_course(name)
        except CourseError as exc:
            raise UsageError(str(exc)) from None
    return courses


def validate(cfg: DictConfig) -> dict[str, Any]:
    """Check everything before any compute starts, so a typo costs nothing."""
    check.check_common(cfg)
    methods = parse_methods(cfg)
    gains = check.pair_list(cfg, "task.gains", dim=2)
    return {
        "methods": methods,
        "gains": gains,
        "courses": load_courses(cfg),
        "params": physics_params(cfg),
        "seeds": check.int_list(cfg, "seeds"),
        "reach": check.number(cfg, "task.reach_radius", lo=0, lo_open=True),
        "timeout_s": check.number(cfg, "task.waypoint_timeout_s", lo=0, lo_open=True),
        "record": _record_target(cfg, methods),
        "excitation": excitation_spec(cfg),
    }


def _record_target(cfg: DictConfig, methods) -> Path | None:
    """`record=DIR`: one ROS 2 bag per episode, DIR/<method>_<course>_s<seed>/ (robocl/offline/recording.py)."""
    from robocl.offline.recording import episode_dir_name, record_target

    return record_target(cfg, [episode_dir_name(m.name, Path(c).stem, s) for m in methods
                               for c in check.string_list(cfg, "task.map") for s in check.int_list(cfg, "seeds")])


def units(spec: dict[str, Any]) -> list[Unit]:
    """One unit per (method, course, seed), in the order results are reported."""
    return [Unit(f"{m.name}|{course}|s{seed}", {"method": i, "course": course, "seed": seed},
                 f"{m.name} {course} s{seed}")
            for i, m in enumerate(spec["methods"]) for course in spec["courses"] for seed in spec["seeds"]]


def run_episode(shared: dict[str, Any], params: dict[str, Any], ctx: UnitContext) -> dict[str, Any]:
    """One episode: a fresh environment and controller, so its result depends on its inputs only."""
    cfg, spec = shared["cfg"], shared["spec"]
    method, course, seed = spec["methods"][params["method"]], params["course"], params["seed"]
    dt = float(cfg.robot.dt)
    env = gym.make(str(cfg.robot.env_id), dt=dt).unwrapped
    env.set_params(spec["params"])
    schedule = GainSchedule(spec["gains"], list(cfg.task.intervention))
    tags = {"method": method.name, "seed": seed, "task": course}
    cost = WaypointCost()
    controller = make_controller(cfg, method, shared["model"], cost, seed, shared["refiner_net"])
    mission = WaypointMission(spec["courses"][course], spec["reach"], max(1, round(spec["timeout_s"] / dt)))

    def on_step(step: int, row: dict[str, Any]) -> None:
        plan = controller.stats.plan_ms[-1] if controller.stats.plan_ms else 0.0
        ctx.report(mission.index, len(mission.waypoints),
                   f"{row['regime']:<16} reached {sum(mission.reached):>2}  plan {plan:5.1f} ms")
        ctx.step({**tags, **row})

    metrics, trace = run_waypoint_episode(env, excite(cfg, controller, spec["excitation"], seed), cost, mission,
                                          schedule, int(cfg.budget.max_steps), seed, on_step)
    if spec["record"] is not None:
        from robocl.offline.recording import record_episode

        record_episode(spec["record"], tags, np.asarray(trace.states), np.asarray(trace.actions),
                       trace.regimes, cfg, gains=list(map(list, cfg.task.gains)))
    ctx.log(f"{method.name} {course} s{seed}: success {metrics['success_rate']:.3f}")
    row = {**tags, **metrics, **controller_metrics(controller)}
    first_seed = seed == spec["seeds"][0]
    return {"rows": [row], "payload": (np.asarray(trace.states), trace.regimes + trace.regimes[-1:])
            if first_seed else None}


def run(cfg: DictConfig, run_dir: Path, progress, sink: ResultSink) -> None:
    spec = validate(cfg)
    base_model, refiner_net = nominal_models(cfg, spec["methods"], sink, progress)
    logger = run_logger(cfg, run_dir)
    traces: dict[str, dict[str, tuple[np.ndarray, list[str]]]] = {c: {} for c in spec["courses"]}
    plan = units(spec)

    def on_result(result) -> None:
        if result.payload is not None:
            unit = next(u for u in plan if u.key == result.key)
            traces[unit.params["course"]][spec["methods"][unit.params["method"]].name] = result.payload
            plot_paths(spec["courses"], traces, run_dir / "paths.png", spec["reach"])

    shared = {"cfg": cfg, "spec": spec, "model": base_model, "refiner_net": refiner_net}
    fan_out(cfg, run_dir, progress, sink, plan, run_episode, shared, logger, on_result)
    logger.finish()
