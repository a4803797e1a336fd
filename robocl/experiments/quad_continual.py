"""Quadrotor reference tracking under regime changes: frozen vs online model, with or without AFM.

Each (condition, method, seed) is one episode of `task.name` (hover / figure_eight / waypoints);
inside `task.intervention` the condition's physical regime (`physics`) and command gains (`gains`,
in sequence) are applied, and the nominal regime returns after the window. Without
`task.conditions` there is one condition, `task.physics` + `task.gains`; `quad_afm` lists several
(command gains, payload), each reported on its own and in `per_condition.md`. `record=DIR` writes
one ROS 2 bag per episode, `DIR/<method>_<task>_s<seed>/` (robocl/offline/recording.py), as
ugv_continual does.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import robocl_envs  # noqa: F401  (registers the robocl/* environments)
from omegaconf import DictConfig, OmegaConf

from robocl.build import checks as check
from robocl.build.controller import excitation_spec, excite, make_controller
from robocl.build.methods import parse_methods
from robocl.errors import UsageError
from robocl.eval.markdown import markdown_table
from robocl.eval.plots import plot_tracking
from robocl.eval.sink import ResultSink
from robocl.experiments.common import controller_metrics, nominal_models, refiner_stats, run_logger
from robocl.experiments.fanout import fan_out
from robocl.parallel.units import Unit, UnitContext
from robocl.planning.tracking import ReferenceTrackingCost
from robocl.robots.quadrotor import regime_params
from robocl.sim.tracking import run_tracking_episode
from robocl.tasks.waypoints import GainSchedule

TASKS = ("hover", "figure_eight", "waypoints")


def _container(node: Any) -> dict[str, Any]:
    return OmegaConf.to_container(node, resolve=True) if node else {}


def conditions(cfg: DictConfig) -> dict[str, dict[str, Any]]:
    """name -> {gains, params}: `task.conditions` when given, else the single task.physics/gains one."""
    listed = OmegaConf.select(cfg, "task.conditions")
    if not listed:
        return {str(cfg.task.name): {"gains": check.pair_list(cfg, "task.gains", dim=4),
                                     "params": regime_params(_container(cfg.task.get("physics")))}}
    if not isinstance(listed, DictConfig):
        raise UsageError("task.conditions: must be a mapping NAME: {gains: [[...]], physics: {...}}")
    out = {}
    for name, node in listed.items():
        key = f"task.conditions.{name}"
        if not isinstance(node, DictConfig) or set(node) - {"gains", "physics"}:
            raise UsageError(f"{key}: must be a mapping with keys gains and/or physics")
        gains = check.pair_list(cfg, f"{key}.gains", dim=4) if node.get("gains") is not None else [[1.0] * 4]
        out[str(name)] = {"gains": gains, "params": regime_params(_container(node.get("physics")), f"{key}.physics")}
    return out


COST_WEIGHTS = ("velocity_weight", "yaw_weight", "tilt_weight", "action_rate_weight", "terminal_weight")


def validate(cfg: DictConfig) -> dict[str, Any]:
    check.check_common(cfg)
    name = str(check.get(cfg, "task.name"))
    if name not in TASKS:
        raise UsageError(f"task.name={name}: no such quadrotor task; accepted: {', '.join(TASKS)}")
    hz = check.number(cfg, "robot.control_hz", lo=1, hi=500)
    if abs(float(cfg.robot.dt) * hz - 1.0) > 1e-6:
        raise UsageError(f"robot.dt={cfg.robot.dt}: must equal 1/robot.control_hz ({1.0 / hz:g})")
    methods = parse_methods(cfg)
    conds = conditions(cfg)
    seeds = check.int_list(cfg, "seeds")
    return {
        "methods": methods,
        "conditions": conds,
        "seeds": seeds,
        "task": name,
        "control_hz": hz,
        "record": _record_target(cfg, methods, [_task_tag(c, name, len(conds) > 1) for c in conds], seeds),
        "excitation": excitation_spec(cfg),
        "cost": {k: check.number(cfg, f"task.cost.{k}", lo=0) for k in COST_WEIGHTS},
    }


def _task_tag(condition: str, task: str, several: bool) -> str:
    """The `task` of an episode's results row (and of its recording's folder name)."""
    return condition if several else task


def _record_target(cfg: DictConfig, methods, tasks: list[str], seeds: list[int]) -> Path | None:
    """`record=DIR`: one ROS 2 bag per episode, DIR/<method>_<task>_s<seed>/ (robocl/offline/recording.py)."""
    from robocl.offline.recording import episode_dir_name, record_target

    return record_target(cfg, [episode_dir_name(m.name, t, s) for t in tasks for m in methods for s in seeds])


class _Recorded:
    """The controller as an episode runner sees it, keeping the states and commands of every step it
    observed (the tracking trace holds neither the start state nor the commands), for record=."""

    def __init__(self, controller: Any) -> None:
        self._controller = controller
        self.states: list[np.ndarray] = []
        self.actions: list[np.ndarray] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._controller, name)

    def observe(self, obs: np.ndarray, action: np.ndarray, next_obs: np.ndarray) -> Any:
        if not self.states:
            self.states.append(np.array(obs, dtype=float))
        self.actions.append(np.array(action, dtype=float))
        self.states.append(np.array(next_obs, dtype=float))
        return self._controller.observe(obs, action, next_obs)


def _regime_schedule(condition: dict[str, Any], window: list[float]):
    """fraction -> (label, apply(env)): physics + gains inside the window, nominal outside."""
    from dataclasses import replace

    from robocl_envs.quadrotor import QuadParams

    gains = GainSchedule(condition["gains"], window)
    shifted = condition["params"]

    def regime_at(fraction: float):
        inside = window[0] <= fraction < window[1]
        params = replace(shifted, gains=gains.at(fraction)) if inside else QuadParams()
        label = "nominal" if params == QuadParams() else "regime" + gains.label(fraction).replace("nominal", "")
        return label, lambda env, p=params: env.set_params(p)

    return regime_at


def units(spec: dict[str, Any]) -> list[Unit]:
    """One unit per (condition, method, seed) episode, in the order results are reported."""
    several = len(spec["conditions"]) > 1
    out = []
    for cond in spec["conditions"]:
        tag = _task_tag(cond, spec["task"], several)
        out += [Unit(f"{m.name}|{tag}|s{seed}", {"condition": cond, "method": i, "seed": seed},
                     f"{m.name} {tag} s{seed}")
                for i, m in enumerate(spec["methods"]) for seed in spec["seeds"]]
    return out


def run_episode(shared: dict[str, Any], params: dict[str, Any], ctx: UnitContext) -> dict[str, Any]:
    """One tracking episode in a fresh environment with a fresh controller."""
    from robocl_envs.quad_tasks import make_task

    cfg, spec = shared["cfg"], shared["spec"]
    cond_name, method, seed = params["condition"], spec["methods"][params["method"]], params["seed"]
    condition = spec["conditions"][cond_name]
    env = gym.make(str(cfg.robot.env_id), control_hz=spec["control_hz"], task=spec["task"]).unwrapped
    reference = make_task(spec["task"])
    horizon = int(cfg.planner.horizon)
    regime_at = _regime_schedule(condition, list(cfg.task.intervention))
    tags = {"method": method.name, "seed": seed,
            "task": _task_tag(cond_name, spec["task"], len(spec["conditions"]) > 1)}
    cost = ReferenceTrackingCost(horizon, **spec["cost"])
    controller = make_controller(cfg, method, shared["model"], cost, seed, shared["refiner_net"])
    steps = int(round(reference.duration * spec["control_hz"]))

    def on_step(k: int, row: dict[str, Any]) -> None:
        plan = controller.stats.plan_ms[-1] if controller.stats.plan_ms else 0.0
        ctx.report(k + 1, steps, f"{row['regime']:<14} err {row['error']:.3f} m  plan {plan:5.1f} ms")
        ctx.step({**tags, **row})

    runner = excite(cfg, controller, spec["excitation"], seed)
    runner = runner if spec["record"] is None else _Recorded(runner)
    metrics, trace = run_tracking_episode(env, runner, cost, reference, reference.duration, horizon, seed,
                                          regime_at, on_step)
    if spec["record"] is not None and runner.actions:
        from robocl.offline.recording import record_episode

        record_episode(spec["record"], tags, np.asarray(runner.states), np.asarray(runner.actions), trace.regimes,
                       cfg, gains=condition["gains"], physics=asdict(condition["params"]))
    ctx.log(f"{method.name} {tags['task']} s{seed}: tracking rmse {metrics.get('tracking_rmse')}")
    row = {**tags, **metrics, **controller_metrics(controller), **refiner_stats(controller.refiner)}
    return {"rows": [row], "payload": trace if seed == spec["seeds"][0] else None}


def run(cfg: DictConfig, run_dir: Path, progress, sink: ResultSink) -> None:
    spec = validate(cfg)
    base_model, refiner_net = nominal_models(cfg, spec["methods"], sink, progress)
    logger = run_logger(cfg, run_dir)
    several = len(spec["conditions"]) > 1
    plan = {u.key: u for u in units(spec)}
    traces: dict[str, dict[str, Any]] = {c: {} for c in spec["conditions"]}

    def on_result(result) -> None:
        if result.payload is not None:
            unit = plan[result.key]
            cond = unit.params["condition"]
            traces[cond][spec["methods"][unit.params["method"]].name] = result.payload
            plot_tracking(traces[cond], run_dir / (f"tracking_{cond}.png" if several else "tracking.png"))
        if several:
            write_condition_table(sink, run_dir)

    shared = {"cfg": cfg, "spec": spec, "model": base_model, "refiner_net": refiner_net}
    fan_out(cfg, run_dir, progress, sink, list(plan.values()), run_episode, shared, logger, on_result)
    logger.finish()


def write_condition_table(sink: ResultSink, run_dir: Path) -> None:
    """per_condition.md: mean tracking RMSE and crashes per (condition, method) over seeds."""
    import statistics
    from collections import defaultdict

    from robocl.utils.io import atomic_write_text

    cells: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in sink.runs:
        cells[r["task"]][r["method"]].append(r)
    methods = list(dict.fromkeys(r["method"] for r in sink.runs))
    rows = []
    table: dict[str, dict[str, dict[str, float]]] = {}
    for cond, by_method in cells.items():
        row = {}
        for m, rs in by_method.items():
            rmse = [r["tracking_rmse"] for r in rs if r.get("tracking_rmse") is not None]
            row[m] = {"tracking_rmse": statistics.fmean(rmse) if rmse else None,
                      "crashes": sum(int(r["crashes"]) for r in rs), "runs": len(rs)}
        table[cond] = row
        rows.append([cond] + [
            f"{row[m]['tracking_rmse']:.3f} ({row[m]['crashes']})" if m in row and row[m]["tracking_rmse"] is not None
            else "—" for m in methods])
    sink.extra["per_condition"] = table
    header = ["condition", *(f"{m} rmse (crashes)" for m in methods)]
    atomic_write_text(run_dir / "per_condition.md", markdown_table(header, rows) + "\n")
    sink.flush()
