"""The public AFM UGV protocol: action refinement vs online model adaptation under gain interventions.

Every gain pair in `task.gains` is its own evaluation condition: on each course and seed, the pair
multiplies the commanded (v, w) between `task.intervention` fractions of the waypoints (15% -> 80%).
Methods are planner[_afm][_online]; `_afm` uses the refiner from `refiner=` (the experiment selects
`afm`). Results: results.json (runs + per-gain table + acceptance check), per_gain.md, bar plots.
`afm.quick=true` runs a reduced grid (first seed, first course, first `afm.quick_gains` pairs).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import robocl_envs  # noqa: F401  (registers the robocl/* environments)
from omegaconf import DictConfig, OmegaConf

from robocl.build import checks as check
from robocl.build.controller import make_controller
from robocl.build.methods import parse_method, parse_methods
from robocl.errors import UsageError
from robocl.eval.markdown import markdown_table
from robocl.eval.plots import plot_bars, save_figure
from robocl.eval.sink import ResultSink
from robocl.experiments.common import controller_metrics, nominal_models, refiner_stats, run_logger
from robocl.experiments.fanout import fan_out
from robocl.experiments.ugv_continual import load_courses, physics_params
from robocl.parallel.units import Unit, UnitContext
from robocl.planning.costs import WaypointCost
from robocl.sim.rollouts import run_waypoint_episode
from robocl.tasks.waypoints import GainSchedule, WaypointMission

HEADLINE_RATIO = 1.342  # the paper's +34.2% success over the best baseline


def gain_label(gains: list[float]) -> str:
    return "(" + ",".join(f"{g:g}" for g in gains) + ")"


def validate(cfg: DictConfig) -> dict[str, Any]:
    """Check everything before any compute starts, so a typo costs nothing."""
    check.check_common(cfg)
    methods = parse_methods(cfg)
    quick = bool(OmegaConf.select(cfg, "afm.quick", default=False))
    spec = {
        "methods": methods,
        "gains": check.pair_list(cfg, "task.gains", dim=2),
        "courses": load_courses(cfg),
        "params": physics_params(cfg),
        "seeds": check.int_list(cfg, "seeds"),
        "reach": check.number(cfg, "task.reach_radius", lo=0, lo_open=True),
        "timeout_s": check.number(cfg, "task.waypoint_timeout_s", lo=0, lo_open=True),
        "quick": quick,
    }
    if str(cfg.refiner.get("kind")) == "afm":
        check.number(cfg, "refiner.threshold", lo=0, lo_open=True)
        check.number(cfg, "refiner.cooldown", lo=0, integer=True)
        check.number(cfg, "refiner.switch_factor", lo=1, lo_open=True)
        check.number(cfg, "refiner.level_halflife", lo=0, lo_open=True)
        check.number(cfg, "refiner.steps", lo=1, integer=True)
        if str(cfg.refiner.solver) not in ("midpoint", "euler", "rk4"):
            raise UsageError(f"refiner.solver={cfg.refiner.solver}: accepted midpoint, euler, rk4")
    if quick:
        n = int(check.number(cfg, "afm.quick_gains", lo=1, integer=True))
        first = next(iter(spec["courses"]))
        spec.update(seeds=spec["seeds"][:1], gains=spec["gains"][:n],
                    courses={first: spec["courses"][first]})
    return spec


def units(spec: dict[str, Any]) -> list[Unit]:
    """One unit per episode; seeds outermost, so every condition has a result early."""
    return [Unit(f"{m.name}|{course}{gain_label(gains)}|s{seed}",
                 {"method": i, "gains": list(gains), "course": course, "seed": seed},
                 f"{m.name} {course}{gain_label(gains)} s{seed}")
            for seed in spec["seeds"] for gains in spec["gains"] for course in spec["courses"]
            for i, m in enumerate(spec["methods"])]


def run_episode(shared: dict[str, Any], params: dict[str, Any], ctx: UnitContext) -> dict[str, Any]:
    """One (method, gain pair, course, seed) episode in a fresh environment with a fresh controller."""
    cfg, spec = shared["cfg"], shared["spec"]
    method, gains, course, seed = spec["methods"][params["method"]], params["gains"], params["course"], params["seed"]
    dt = float(cfg.robot.dt)
    env = gym.make(str(cfg.robot.env_id), dt=dt).unwrapped
    env.set_params(spec["params"])
    schedule = GainSchedule([gains], list(cfg.task.intervention))
    waypoints = spec["courses"][course]
    tags = {"method": method.name, "seed": seed, "task": f"{course}{gain_label(gains)}"}
    cost = WaypointCost()
    controller = make_controller(cfg, method, shared["model"], cost, seed, shared["refiner_net"])
    mission = WaypointMission(waypoints, spec["reach"], max(1, round(spec["timeout_s"] / dt)))

    def on_step(step: int, row: dict[str, Any]) -> None:
        if step % 10 == 0 or row["event"]:
            ctx.report(mission.index, len(waypoints), f"{row['regime']:<16} reached {sum(mission.reached):>2}")
        ctx.step({**tags, **row})

    metrics, _ = run_waypoint_episode(env, controller, cost, mission, schedule, int(cfg.budget.max_steps), seed,
                                      on_step)
    ctx.log(f"{tags['method']} {tags['task']} s{seed}: success {metrics['success_rate']:.3f}")
    return {"rows": [{**tags, "course": course, "gains": gain_label(gains), **metrics,
                      **controller_metrics(controller), **refiner_stats(controller.refiner)}]}


PLOT_EVERY = 20  # units between redrawn plots (the tables are rewritten after every unit)


def run(cfg: DictConfig, run_dir: Path, progress, sink: ResultSink) -> None:
    spec = validate(cfg)
    base_model, refiner_net = nominal_models(cfg, spec["methods"], sink, progress)
    if spec["quick"]:
        sink.note("afm.quick: reduced grid (first seed, first course, first afm.quick_gains gain pairs)")
    logger = run_logger(cfg, run_dir)
    finished = [0]

    def on_result(result) -> None:
        finished[0] += 1
        _write_tables(sink, run_dir, spec, progress, final=False, plots=finished[0] % PLOT_EVERY == 0)

    shared = {"cfg": cfg, "spec": spec, "model": base_model, "refiner_net": refiner_net}
    fan_out(cfg, run_dir, progress, sink, units(spec), run_episode, shared, logger, on_result)
    _write_tables(sink, run_dir, spec, progress, final=True)
    logger.finish()


# ---- tables and plots ---------------------------------------------------------------------------
def per_gain_table(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """gain pair -> method -> mean success rate over courses and seeds."""
    cells: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        cells[r["gains"]][r["method"]].append(float(r["success_rate"]))
    return {g: {m: statistics.fmean(v) for m, v in ms.items()} for g, ms in cells.items()}


def acceptance(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The paper's claim: mppi_afm's success over frozen `mppi` (the planner on the nominal model, the
    paper's baseline setting) >= 1.342x; the best method without `_afm` is reported beside it."""
    means: dict[str, list[float]] = defaultdict(list)
    for r in runs:
        means[r["method"]].append(float(r["success_rate"]))
    afm = [m for m in means if parse_method(m).refine and not parse_method(m).online]
    base = [m for m in means if not parse_method(m).refine]
    if not afm or not base:
        return None
    frozen = next((m for m in base if not parse_method(m).online), None)
    best = max(base, key=lambda m: statistics.fmean(means[m]))
    afm_name = afm[0]
    a, b = statistics.fmean(means[afm_name]), statistics.fmean(means[best])
    out = {"afm_method": afm_name, "afm_success": a, "best_baseline": best, "baseline_success": b,
           "best_ratio": a / b if b > 0 else None, "target_ratio": HEADLINE_RATIO}
    if frozen is not None:
        f = statistics.fmean(means[frozen])
        out.update(frozen=frozen, frozen_success=f, ratio=a / f if f > 0 else None,
                   passed=bool(f > 0 and a / f >= HEADLINE_RATIO) or (f == 0 and a > 0))
    return out


# method pairs whose paired difference (second minus first) the report gives, where both were run
PAIRS = (("mppi", "mppi_afm"), ("mppi_online", "mppi_afm_online"), ("mppi_afm", "mppi_afm_online"),
         ("mppi_online", "mppi_afm"), ("mppi", "mppi_online"))


def _items(runs: list[dict[str, Any]]) -> dict[str, dict[tuple, float]]:
    """method -> {(gain pair, course, seed): success rate}: the independent items of the protocol."""
    out: dict[str, dict[tuple, float]] = defaultdict(dict)
    for r in runs:
        out[r["method"]][(r["gains"], r.get("course"), r["seed"])] = float(r["success_rate"])
    return out


def statistics_table(runs: list[dict[str, Any]], methods: list[str]) -> dict[str, Any]:
    """Per-method success with a 95% bootstrap interval over (gain pair, course, seed), and paired
    differences between methods on the items both ran (an interval above zero: a real gain)."""
    from robocl.eval.paired import mean_interval, paired_difference

    items = _items(runs)
    per_method = {}
    for m in methods:
        if items.get(m):
            ci = mean_interval(np.array(list(items[m].values())))
            per_method[m] = {"mean": ci.mean, "low": ci.low, "high": ci.high, "items": ci.n}
    pairs = []
    for a, b in PAIRS:
        shared = sorted(set(items.get(a, {})) & set(items.get(b, {})), key=str)
        if len(shared) < 2:
            continue
        d = paired_difference(np.array([items[a][k] for k in shared]), np.array([items[b][k] for k in shared]),
                              np.arange(len(shared)))
        pairs.append({"a": a, "b": b, "diff": d.diff, "low": d.low, "high": d.high, "items": len(shared),
                      "verdict": d.verdict(higher_is_better=True)})
    return {"success": per_method, "paired": pairs}


def recovery_table(runs: list[dict[str, Any]], methods: list[str]) -> dict[str, dict[str, Any]]:
    """method -> median steps back on course after the intervention starts (c1) and ends (c2), over the
    episodes that reached that change; an episode that never recovered counts as longer than any other."""
    out: dict[str, dict[str, Any]] = {}
    for m in methods:
        row: dict[str, Any] = {}
        for j, when in ((1, "start"), (2, "end")):
            values = [r[f"recovery_steps_c{j}"] for r in runs if r["method"] == m and f"recovery_steps_c{j}" in r]
            if values:
                steps = np.array([np.inf if v is None else float(v) for v in values])
                median = float(np.median(steps))
                row[when] = {"median": median if np.isfinite(median) else None, "episodes": len(values),
                             "never": int(np.isinf(steps).sum())}
        if row:
            out[m] = row
    return out


def format_recovery(table: dict[str, dict[str, Any]]) -> str:
    def cell(v: dict[str, Any] | None) -> str:
        if v is None:
            return "—"
        median = "never" if v["median"] is None else f"{v['median']:g}"
        return f"{median} ({v['never']}/{v['episodes']} never)"

    rows = [[m, cell(r.get("start")), cell(r.get("end"))] for m, r in table.items()]
    return ("time to recover, median control steps until back on course (within 0.5 m of the leg for 10 "
            "steps):\n\n" + markdown_table(["method", "after the intervention starts", "after it ends"], rows))


def format_statistics(stats: dict[str, Any]) -> str:
    rows = [[m, f"{v['mean']:.3f}", f"[{v['low']:.3f}, {v['high']:.3f}]", v["items"]]
            for m, v in stats["success"].items()]
    text = ("success rate, mean over (gain pair, course, seed) with its 95% bootstrap interval:\n\n"
            + markdown_table(["method", "success", "95% interval", "episodes"], rows))
    if stats["paired"]:
        rows = [[f"{p['b']} − {p['a']}", f"{p['diff']:+.3f}", f"[{p['low']:+.3f}, {p['high']:+.3f}]", p["items"],
                 p["verdict"]] for p in stats["paired"]]
        text += ("\n\npaired differences on the same (gain pair, course, seed) episodes, 95% bootstrap "
                 "interval:\n\n" + markdown_table(["difference", "mean", "95% interval", "pairs", "verdict"], rows))
    return text


def format_per_gain(table: dict[str, dict[str, float]], methods: list[str]) -> str:
    rows = []
    for g, row in table.items():
        cells = [f"{row[m]:.3f}" if m in row else "—" for m in methods]
        best = max((row[m] for m in methods if m in row), default=None)
        rows.append([g] + [f"**{c}**" if m in row and row[m] == best else c for c, m in zip(cells, methods)])
    mean = {m: statistics.fmean([row[m] for row in table.values() if m in row]) for m in methods
            if any(m in row for row in table.values())}
    rows.append(["**mean**"] + [f"{mean[m]:.3f}" if m in mean else "—" for m in methods])
    return markdown_table(["gain pair", *methods], rows)


def _write_tables(sink: ResultSink, run_dir: Path, spec: dict[str, Any], progress, final: bool,
                  plots: bool = True) -> None:
    from robocl.eval.results import summarize
    from robocl.utils.io import atomic_write_text

    if not sink.runs:
        return
    methods = [m.name for m in spec["methods"]]
    table = per_gain_table(sink.runs)
    sink.extra["per_gain_success"] = table
    check = acceptance(sink.runs)
    sink.extra["acceptance"] = check
    text = format_per_gain(table, methods)
    if final:  # the bootstrap takes a moment: once, at the end (and on resume=DIR of a finished run)
        stats = statistics_table(sink.runs, methods)
        sink.extra["statistics"] = stats
        text += "\n\n" + format_statistics(stats)
        recovery = recovery_table(sink.runs, methods)
        if recovery:
            sink.extra["recovery"] = recovery
            text += "\n\n" + format_recovery(recovery)
    if check and check.get("ratio") is not None:
        text += (f"\n\n{check['afm_method']} success {check['afm_success']:.3f} vs frozen {check['frozen']} "
                 f"{check['frozen_success']:.3f}: ratio {check['ratio']:.3f} (target >= {HEADLINE_RATIO}) -> "
                 f"{'PASS' if check['passed'] else 'FAIL'}; best method without AFM: {check['best_baseline']} "
                 f"{check['baseline_success']:.3f}")
    atomic_write_text(run_dir / "per_gain.md", text + "\n")
    sink.flush()
    if not (plots or final):
        return
    plot_bars(summarize(sink.runs), "success_rate", run_dir / "success_by_method.png",
              title="success rate by method (mean over gain pairs, courses, seeds)")
    plot_per_gain(table, methods, run_dir / "success_by_gain.png")
    if final:
        progress.log("per-gain success rate (mean over courses and seeds):\n" + text)


def plot_per_gain(table: dict[str, dict[str, float]], methods: list[str], path: Path) -> Path:
    import matplotlib.pyplot as plt

    gains = list(table)
    width = 0.8 / max(1, len(methods))
    fig, ax = plt.subplots(figsize=(2.0 + 0.9 * len(gains) * max(1, len(methods)) * 0.45, 4.2))
    x = np.arange(len(gains))
    for k, m in enumerate(methods):
        ax.bar(x + (k - (len(methods) - 1) / 2) * width, [table[g].get(m, 0.0) for g in gains], width, label=m)
    ax.set_xticks(x, gains, rotation=30, ha="right")
    ax.set_xlabel("gain pair (v, w)")
    ax.set_ylabel("success rate")
    ax.set_ylim(0, 1.25)  # headroom: the legend sits above the bars
    ax.set_title("success rate by gain pair")
    ax.legend(fontsize=8, ncol=min(4, len(methods)), loc="upper center")
    return save_figure(fig, path)
