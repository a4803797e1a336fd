"""Soak: one UGV controller learning online for `soak.steps` control steps (`robocl-run experiment=soak`).

The real MuJoCo UGV drives laps of the courses (`task.map`, in turn; the environment is reset when a lap
ends, by finishing, crashing or `budget.max_steps`) with ONE controller built once, so whatever it
accumulates across episodes stays. The actuation gains cycle through nominal and each of `task.gains`,
`soak.regime_every` steps each, so the online learner keeps learning. Every `soak.every` steps a sample:
resident memory, median plan / learn ms of the steps since the last sample, the length of every container
the controller, its stats, strategy, planner, refiner and model hold in public attributes, Python's live
object count, and the model / planner tensors carrying an autograd graph (there should be none outside
learning). soak.json (rewritten atomically at each sample) holds the samples and a summary; soak.png plots
memory and plan time against the step.
"""

from __future__ import annotations

import gc
import os
import resource
import statistics
import time
from collections import deque
from pathlib import Path
from typing import Any

import gymnasium as gym
import robocl_envs  # noqa: F401  (registers the robocl/* environments)
import torch
from omegaconf import DictConfig

from robocl.build import checks as check
from robocl.build.controller import excite, make_controller
from robocl.control import Controller, Recent
from robocl.errors import UsageError
from robocl.eval.sink import ResultSink
from robocl.experiments import ugv_continual
from robocl.experiments.common import nominal_models
from robocl.planning.costs import WaypointCost
from robocl.sim.rollouts import run_waypoint_episode
from robocl.tasks.waypoints import GainSchedule, WaypointMission
from robocl.utils.io import atomic_write_json

RESUME = "a soak measures one uninterrupted run; start it again"


class StepGains(GainSchedule):
    """The episode runner's gain schedule, by soak step instead of mission progress: nominal, then each of
    `gains`, `every` steps each, round and round (`step` is advanced by the soak)."""

    def __init__(self, gains: list[list[float]], every: int) -> None:
        super().__init__([[1.0, 1.0], *gains])
        self.every = every
        self.step = 0

    def at(self, progress: float) -> tuple[float, ...]:
        return self.gains[(self.step // self.every) % len(self.gains)]


def rss_mb() -> float:
    """This process's resident memory (MB): /proc/self/statm, else the peak from getrusage."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def container_sizes(controller: Controller, cost: Any) -> dict[str, int]:
    """Length of every list, deque, dict, set and kept series in a public attribute of the controller's parts,
    the online buffer's fill and the optimizer's state entries."""
    sizes: dict[str, int] = {}
    parts = {"controller": controller, "stats": controller.stats, "strategy": controller.strategy,
             "planner": controller.planner, "refiner": controller.refiner, "model": controller.model, "cost": cost}
    for owner, obj in parts.items():
        for name, value in vars(obj).items():
            if name.startswith("_"):
                continue
            if isinstance(value, (list, tuple, dict, set, deque, Recent)):
                sizes[f"{owner}.{name}"] = len(value)
            elif isinstance(value, torch.optim.Optimizer):
                sizes[f"{owner}.{name}.state"] = len(value.state)
            elif hasattr(value, "size") and hasattr(value, "capacity") and isinstance(value.size, int):
                sizes[f"{owner}.{name}"] = value.size  # the online strategy's ring buffer
    return sizes


def graph_tensors(controller: Controller, cost: Any) -> list[str]:
    """Tensors the model, planner, cost and controller keep that carry an autograd graph (grad_fn)."""
    found = [f"model.{n}" for n, t in [*controller.model.named_parameters(), *controller.model.named_buffers()]
             if t.grad_fn is not None]
    for owner, obj in (("planner", controller.planner), ("cost", cost), ("controller", controller)):
        for name, value in vars(obj).items():
            if isinstance(value, torch.Tensor) and value.grad_fn is not None:
                found.append(f"{owner}.{name}")
    return found


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


class SoakMeter:
    """Per-step timings since the last sample (bounded: cleared at each one) and the samples."""

    def __init__(self, controller: Controller, cost: Any) -> None:
        self.controller = controller
        self.cost = cost
        self.step = 0
        self.plan_ms: list[float] = []
        self.learn_ms: list[float] = []
        self._seen = (0, 0)
        self._t = time.perf_counter()
        self.t0 = self._t
        self.samples: list[dict[str, Any]] = []

    def tick(self) -> None:
        """After each control step: this step's plan and learn time, if it planned / learned."""
        self.step += 1
        s = self.controller.stats
        if s.plan_ms.count > self._seen[0]:
            self.plan_ms.append(s.plan_ms[-1])
        if s.learn_ms.count > self._seen[1]:
            self.learn_ms.append(s.learn_ms[-1])
        self._seen = (s.plan_ms.count, s.learn_ms.count)

    def sample(self, **extra: Any) -> dict[str, Any]:
        now = time.perf_counter()
        steps = self.step - (self.samples[-1]["step"] if self.samples else 0)
        gc.collect()
        row = {"step": self.step, "wall_s": round(now - self.t0, 3), "rss_mb": round(rss_mb(), 2),
               "plan_ms_median": _median(self.plan_ms), "learn_ms_median": _median(self.learn_ms),
               "steps_per_s": steps / (now - self._t) if steps else None,
               "containers": container_sizes(self.controller, self.cost),
               "gc_objects": len(gc.get_objects()), "graph_tensors": graph_tensors(self.controller, self.cost),
               **extra}
        self.samples.append(row)
        self.plan_ms.clear()
        self.learn_ms.clear()
        self._t = time.perf_counter()  # the sample's own cost is not a step's
        return row


def summarize(samples: list[dict[str, Any]], warmup: int, wall_s: float, laps: dict[str, Any]) -> dict[str, Any]:
    """Start / end figures: memory (also after `warmup` steps, as allocator pools and caches fill first; the
    growth is the end's excess over the lowest sample since), plan and learn ms of the first and last sample
    windows, container sizes at the first sample, mid-run and the end, throughput."""
    first, last = samples[1] if len(samples) > 1 else samples[0], samples[-1]
    warm = next((s for s in samples if s["step"] >= warmup), last)
    low = min(s["rss_mb"] for s in samples if s["step"] >= warm["step"])  # a transient high at warm-up hides nothing
    mid = next(s for s in samples if s["step"] >= last["step"] / 2)
    return {
        "steps": last["step"], "wall_s": round(wall_s, 2), "steps_per_s": last["step"] / wall_s if wall_s else None,
        "rss_mb": {"start": samples[0]["rss_mb"], "first_window": first["rss_mb"], "after_warmup": warm["rss_mb"],
                   "warmup_step": warm["step"], "min_after_warmup": low, "end": last["rss_mb"],
                   "peak": max(s["rss_mb"] for s in samples), "growth_after_warmup": round(last["rss_mb"] - low, 2)},
        "plan_ms_median": {"first": first["plan_ms_median"], "last": last["plan_ms_median"]},
        "learn_ms_median": {"first": first["learn_ms_median"], "last": last["learn_ms_median"]},
        "window_steps": first["step"],
        "containers": {"first": first["containers"], "mid": mid["containers"], "end": last["containers"],
                       "mid_step": mid["step"]},
        "gc_objects": {"after_warmup": warm["gc_objects"], "end": last["gc_objects"]},
        "graph_tensors": sorted({t for s in samples for t in s["graph_tensors"]}),
        "laps": laps,
    }


def plot_soak(samples: list[dict[str, Any]], path: Path) -> Path:
    from robocl.eval.plots import plt, save_figure

    rows = samples[1:] or samples
    steps = [s["step"] for s in rows]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True)
    ax1.plot([s["step"] for s in samples], [s["rss_mb"] for s in samples], "-", color="C0")
    ax1.set_ylabel("resident memory (MB)")
    ax2.plot(steps, [s["plan_ms_median"] for s in rows], "-", color="C1", label="plan")
    ax2.plot(steps, [s["learn_ms_median"] for s in rows], "-", color="C2", label="learn")
    ax2.set_ylabel("median ms per step (window)")
    ax2.set_xlabel("control step")
    ax2.set_ylim(bottom=0)
    ax2.legend(loc="upper right")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    return save_figure(fig, path)


def validate(cfg: DictConfig) -> dict[str, Any]:
    spec = ugv_continual.validate(cfg)
    if len(spec["methods"]) != 1 or len(spec["seeds"]) != 1:
        raise UsageError("the soak drives one controller: name one method and one seed "
                         f"(got methods={[m.name for m in spec['methods']]} seeds={spec['seeds']})")
    if spec["record"] is not None:
        raise UsageError("record=: the soak does not record (use experiment=ugv_continual)")
    spec["steps"] = int(check.number(cfg, "soak.steps", lo=1, integer=True))
    spec["every"] = int(check.number(cfg, "soak.every", lo=1, integer=True))
    spec["regime_every"] = int(check.number(cfg, "soak.regime_every", lo=1, integer=True))
    spec["warmup"] = int(check.number(cfg, "soak.warmup", lo=0, integer=True))
    return spec


def run(cfg: DictConfig, run_dir: Path, progress, sink: ResultSink) -> None:
    spec = validate(cfg)
    base_model, refiner_net = nominal_models(cfg, spec["methods"], sink, progress)
    method, seed = spec["methods"][0], spec["seeds"][0]
    dt = float(cfg.robot.dt)
    env = gym.make(str(cfg.robot.env_id), dt=dt).unwrapped
    env.set_params(spec["params"])
    cost = WaypointCost()
    controller = make_controller(cfg, method, base_model, cost, seed, refiner_net)
    driven = excite(cfg, controller, spec["excitation"], seed)
    gains = StepGains(spec["gains"], spec["regime_every"])
    meter = SoakMeter(controller, cost)
    steps, every, names = spec["steps"], spec["every"], list(spec["courses"])
    laps = {"laps": 0, "finished": 0, "crashes": 0, "waypoints_reached": 0, "waypoints_passed": 0}
    task = progress.add_task("soak", total=steps, status="")
    out = run_dir / "soak.json"

    def write() -> None:
        atomic_write_json(out, {"method": method.name, "seed": seed, "samples": meter.samples,
                                "summary": summarize(meter.samples, spec["warmup"], time.perf_counter() - meter.t0,
                                                     laps)})

    def on_step(step: int, row: dict[str, Any]) -> None:
        meter.tick()
        gains.step = meter.step
        if meter.step % every == 0 or meter.step == steps:
            s = meter.sample(regime=row["regime"], laps=laps["laps"])
            write()
            progress.update(task, completed=meter.step, status=f"rss {s['rss_mb']:.0f} MB  plan "
                            f"{s['plan_ms_median'] or 0:.2f} ms  learn {s['learn_ms_median'] or 0:.2f} ms")
        elif meter.step % 50 == 0:
            progress.update(task, completed=meter.step)

    meter.sample(regime="nominal", laps=0)  # step 0: built, nothing driven yet
    try:
        while meter.step < steps:
            course = names[laps["laps"] % len(names)]
            mission = WaypointMission(spec["courses"][course], spec["reach"], max(1, round(spec["timeout_s"] / dt)))
            budget = min(int(cfg.budget.max_steps), steps - meter.step)
            metrics, _ = run_waypoint_episode(env, driven, cost, mission, gains, budget, seed + laps["laps"], on_step)
            laps["laps"] += 1
            laps["finished"] += int(mission.done)
            laps["crashes"] += metrics["crashes"]
            laps["waypoints_reached"] += metrics["waypoints_reached"]
            laps["waypoints_passed"] += int(mission.index)  # reached or timed out
    finally:
        if len(meter.samples) > 1:
            write()
            plot_soak(meter.samples, run_dir / "soak.png")
    summary = summarize(meter.samples, spec["warmup"], time.perf_counter() - meter.t0, laps)
    sink.extra["soak"] = summary
    sink.add_run({"method": method.name, "seed": seed, "task": "soak", "steps": summary["steps"],
                  "rss_mb_start": summary["rss_mb"]["start"], "rss_mb_end": summary["rss_mb"]["end"],
                  "plan_ms_first": summary["plan_ms_median"]["first"],
                  "plan_ms_last": summary["plan_ms_median"]["last"]})
    progress.log(f"soak: {summary['steps']} steps, {summary['steps_per_s']:.1f} steps/s; rss "
                 f"{summary['rss_mb']['start']:.1f} -> {summary['rss_mb']['end']:.1f} MB; plan ms median "
                 f"{summary['plan_ms_median']['first']:.3f} (first {every}) -> {summary['plan_ms_median']['last']:.3f} "
                 f"(last {every}); -> {out}")
