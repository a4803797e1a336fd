"""The onboard node without ROS: fixed-rate control loop, latest-state cache, safety watchdog.

Three threads, so a slow plan never blocks message I/O and a stuck plan never keeps the robot moving:
- I/O (owned by the transport: the rclpy executor or rospy's callback threads) only stores the
  newest odometry/waypoints/clock here (`on_odometry`, `on_waypoints`) and never waits on planning;
- the control loop (`run`) ticks at a fixed rate on the node clock (wall or /clock sim time): take the
  latest state -> plan with the Controller -> publish -> learn from the transition just observed;
- the watchdog ticks on the steady (wall) clock, independently of the loop: odometry older than
  `odom_timeout_s` (or none yet), or a plan running past `plan_deadline_s`, publishes the safe command
  (zero twist / hover) and reports it; the loop resumes normal commands once healthy. With sim time
  the odometry age is measured on /clock, and a /clock that stops for over a second of wall time
  (the simulator died) counts as stale too.
A plan past its deadline always gives the safe command; plans that overrun repeatedly (`PlanBudget`:
`overrun_limit` of the last `overrun_window` plans) shrink the planner's sample budget so the next plans
fit, down to a floor, and a long run of plans well within the deadline restores it step by step.
The loop checks wrongly shaped/non-finite/out-of-range states itself, a plan the Controller refuses (the
model, planner or refiner failed) gives the safe command as a counted safety event of the node, and every
command passes `convert.safe_command`, so a NaN in a message can never leave the node as a non-finite command.
"""

from __future__ import annotations

import copy
import json
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from robocl_ros.convert import safe_command

from robocl.continual.changepoint import ChangeDetector
from robocl.control import Controller, Recent
from robocl.tasks.waypoints import WaypointMission
from robocl.utils.io import atomic_torch_save


class NodeTransport(Protocol):
    """What the core needs from ROS: publish a command and a status line."""

    def publish_command(self, action: np.ndarray) -> None: ...

    def publish_status(self, text: str) -> None: ...


class WallClock:
    """Node time = the steady clock (what jitter is measured against)."""

    sim = False

    def now(self) -> float:
        return time.monotonic()

    def wait_until(self, t: float, stop: threading.Event) -> bool:
        while not stop.is_set():
            remaining = t - time.monotonic()
            if remaining <= 0:
                return True
            stop.wait(min(remaining, 0.05))
        return False


class SimClock:
    """Node time = the latest /clock message (use_sim_time); waits wake on each clock update."""

    sim = True

    def __init__(self) -> None:
        self._t: float | None = None
        self._cond = threading.Condition()

    def set(self, t: float) -> None:
        with self._cond:
            if self._t is None or t >= self._t:
                self._t = t
            self._cond.notify_all()

    def now(self) -> float:
        return self._t if self._t is not None else 0.0

    @property
    def started(self) -> bool:
        return self._t is not None

    def wait_until(self, t: float, stop: threading.Event) -> bool:
        with self._cond:
            while not stop.is_set() and (self._t is None or self._t < t):
                self._cond.wait(0.05)
        return not stop.is_set()


Mission = WaypointMission  # positions of any dimension (2 for the UGV, 3 for the quadrotor)


class RegimeMonitor:
    """Counts regime changes in the Controller's one-step prediction errors with robocl's one change
    detector (robocl.continual.changepoint.ChangeDetector: the recent median against the error's own level)."""

    def __init__(self, window: int = 18, factor: float = 4.0, warmup: int = 50) -> None:
        self.detector = ChangeDetector(window, factor, warmup)
        self.detections = 0

    def update(self, err: float) -> bool:
        detected = self.detector.update(err)
        self.detections += int(detected)
        return detected


class PlanBudget:
    """The planner's sample budget under a plan deadline: degrade on repeated overruns, restore when plans fit.

    `update(plan_ms)` after every plan: when `limit` of the last `window` plans ran past the deadline, the
    population shrinks by `factor` (not below `floor_frac` of the configured one, nor 2) and the window
    starts afresh, so a machine that stays slow is stepped down again after `limit` more overruns. After
    `restore_after` consecutive plans that would still have fitted at the next larger budget (the plan
    time scaled by the population ratio under `margin` of the deadline), the population grows back one
    step (by 1/factor, at most to the configured one). `restore_after=0` never restores; `floor_frac=1`
    never degrades. The single overrun itself is the caller's to handle (it publishes the safe command).
    """

    def __init__(self, planner: Any, deadline_s: float, limit: int = 3, window: int = 25, factor: float = 0.5,
                 floor_frac: float = 0.25, restore_after: int = 250, margin: float = 0.75) -> None:
        if not 1 <= limit <= window:
            raise ValueError(f"overrun limit {limit} must be in [1, window={window}]")
        if not 0 < factor < 1 or not 0 < floor_frac <= 1 or restore_after < 0:
            raise ValueError("budget factor in (0, 1), floor in (0, 1] and restore_after >= 0 are required")
        self.planner = planner
        self.deadline_ms = deadline_s * 1e3
        self.limit, self.factor, self.restore_after, self.margin = limit, factor, restore_after, margin
        self.configured = int(planner.population)
        self.floor = min(self.configured, max(2, math.ceil(floor_frac * self.configured)))
        self.recent: deque[bool] = deque(maxlen=window)
        self.overruns = 0  # plans past the deadline
        self.reductions = 0
        self.restores = 0
        self.min_population = self.configured
        self._fitting = 0  # consecutive plans that would fit the next larger budget

    @property
    def population(self) -> int:
        return int(self.planner.population)

    def update(self, plan_ms: float) -> str | None:
        """Record one plan's time; a line saying how the budget changed, or None."""
        if not math.isfinite(plan_ms):
            return None
        over = plan_ms > self.deadline_ms
        self.overruns += int(over)
        self.recent.append(over)
        now = self.population
        if over:
            self._fitting = 0
            k = sum(self.recent)
            if k < self.limit or now <= self.floor:
                return None
            n = len(self.recent)
            new = self.planner.set_population(max(self.floor, min(now - 1, int(now * self.factor))))
            self.reductions += 1
            self.min_population = min(self.min_population, new)
            self.recent.clear()
            return (f"planner budget reduced: population {now} -> {new} ({k} deadline overruns in the last {n} "
                    f"plans; floor {self.floor})")
        if self.restore_after <= 0 or now >= self.configured:
            return None
        bigger = min(self.configured, max(now + 1, math.ceil(now / self.factor)))
        self._fitting = self._fitting + 1 if plan_ms * bigger / now < self.margin * self.deadline_ms else 0
        if self._fitting < self.restore_after:
            return None
        new = self.planner.set_population(bigger)
        self.restores += 1
        self._fitting = 0
        self.recent.clear()
        return (f"planner budget restored: population {now} -> {new} ({self.restore_after} plans well within "
                f"the deadline)")

    def summary(self) -> dict[str, int]:
        return {"plan_overruns": self.overruns, "planner_budget_reductions": self.reductions,
                "planner_budget_restores": self.restores, "population_configured": self.configured,
                "population_min": self.min_population, "population_final": self.population}


@dataclass
class NodeSettings:
    period_s: float  # control period on the node clock
    odom_timeout_s: float  # steady-clock age after which odometry counts as lost
    plan_deadline_s: float  # a plan running longer is abandoned (safe command instead)
    state_limit: float  # |state entry| above this is out of range
    learn: bool  # learn online from executed transitions
    model_dt: float  # the dynamics model's step; transitions must be this far apart to be learned
    reach_radius: float = 0.5
    waypoint_timeout_s: float = 20.0
    status_period_s: float = 0.2
    checkpoint_path: str | None = None
    checkpoint_every_s: float = 60.0
    learn_dt_tolerance: float = 0.25  # fraction of model_dt
    overrun_limit: int = 3  # this many plan deadline overruns ...
    overrun_window: int = 25  # ... within this many plans shrink the planner's population ...
    budget_factor: float = 0.5  # ... by this factor ...
    budget_floor: float = 0.25  # ... down to this fraction of the configured population
    budget_restore_after: int = 250  # plans well within the deadline before one step back up (0: never)

    def check_interval(self) -> float:
        return max(1e-3, min(self.period_s, self.odom_timeout_s, self.plan_deadline_s) / 4.0)


@dataclass
class _Odom:
    state: np.ndarray
    stamp: float  # message header time (node clock domain); 0 if the sender leaves it empty
    rx: float  # steady-clock receipt time
    seq: int
    rx_node: float = 0.0  # node-clock receipt time (sim time with use_sim_time)


class CycleLog:
    """Per-cycle timing (steady clock, seconds) for jitter/latency reports: the latest `maxlen` cycles.

    Kept in arrays allocated and touched when the node starts (8 numbers a cycle: 11 MB for 200,000), so the
    node's memory stays flat however long it runs (a deque of tuples grew by ~0.26 KB a cycle, to ~53 MB)."""

    def __init__(self, maxlen: int = 200_000) -> None:
        self.maxlen = maxlen
        self._values = np.full((maxlen, len(CYCLE_COLUMNS) - 1), np.nan)  # every column but the mode
        self._modes = np.zeros(maxlen, np.int16)
        self._names: list[str] = []  # mode codes -> names
        self.added = 0

    def add(self, row: tuple) -> None:
        *values, mode = row
        i = self.added % self.maxlen
        self._values[i] = values
        if mode not in self._names:
            self._names.append(mode)
        self._modes[i] = self._names.index(mode)
        self.added += 1

    def __len__(self) -> int:
        return min(self.added, self.maxlen)

    @property
    def rows(self) -> list[tuple]:
        """The kept cycles, oldest first: (cycle, scheduled, tick, odom_stamp, odom_rx, cmd_pub, plan_ms, mode)."""
        idx = np.arange(self.added - len(self), self.added) % self.maxlen
        return [(int(v[0]), *v[1:], self._names[m])
                for v, m in zip(self._values[idx].tolist(), self._modes[idx].tolist())]


EVENT_LOG = 500  # the latest events the node keeps (and results.json lists); older ones drop out
CYCLE_COLUMNS = ("cycle", "scheduled", "tick", "odom_stamp", "odom_rx", "cmd_pub", "plan_ms", "mode")


def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


class NodeCore:
    """Runs a Controller against a transport; see the module docstring for the threads."""

    def __init__(
        self,
        controller: Controller,
        transport: NodeTransport,
        settings: NodeSettings,
        set_goal: Callable[[np.ndarray], None],
        action_low: np.ndarray,
        action_high: np.ndarray,
        clock: WallClock | SimClock | None = None,
        log: Callable[[str], None] = print,
        regime: RegimeMonitor | None = None,
    ) -> None:
        self.controller = controller
        self.transport = transport
        self.settings = settings
        self.set_goal = set_goal
        self.low = np.asarray(action_low, float)
        self.high = np.asarray(action_high, float)
        self.safe = np.asarray(controller.safe_action, float)
        self.clock = clock or WallClock()
        self.log = log
        self.regime = regime or RegimeMonitor()
        self.budget = PlanBudget(controller.planner, settings.plan_deadline_s, settings.overrun_limit,
                                 settings.overrun_window, settings.budget_factor, settings.budget_floor,
                                 settings.budget_restore_after)
        controller.state_limit = settings.state_limit
        self.stop_event = threading.Event()
        self._lock = threading.Lock()  # odometry / waypoints cache
        self._pub_lock = threading.Lock()  # command publication and mode
        self._odom: _Odom | None = None
        self._seq = 0
        self._new_mission: np.ndarray | None = None
        self.mission: Mission | None = None
        self._plan_started: float | None = None
        self._plan_abandoned = False
        self.mode = "start"  # ok | safe | idle
        self.reason = "no odometry yet"
        self._last_cmd_at = -math.inf
        self.events: Counter[str] = Counter()
        self.event_log: Recent = Recent(EVENT_LOG)  # the latest events (their counts: self.events)
        self.cycles = CycleLog()
        self.cycle = 0
        self.missed_ticks = 0
        self.learned = 0
        self.nonfinite_substitutions = 0
        self._prev: tuple[np.ndarray, np.ndarray, float, Any] | None = None
        self._last_status = -math.inf
        self._last_checkpoint = time.monotonic()
        self._save_thread: threading.Thread | None = None
        self.loaded_checkpoint = False

    # ---- I/O thread -----------------------------------------------------------------------------
    def on_odometry(self, state: np.ndarray, stamp: float = 0.0) -> None:
        with self._lock:
            self._seq += 1
            self._odom = _Odom(np.asarray(state, float), float(stamp), time.monotonic(), self._seq, self.clock.now())

    def on_waypoints(self, points: np.ndarray) -> None:
        pts = np.asarray(points, float)
        if pts.ndim != 2 or len(pts) == 0 or not np.all(np.isfinite(pts)):
            self._event("rejected waypoints (empty or not finite)")
            return
        with self._lock:
            self._new_mission = pts

    # ---- commands -------------------------------------------------------------------------------
    def _event(self, reason: str) -> None:
        self.events[reason] += 1
        self.event_log.append({"t": time.monotonic(), "cycle": self.cycle, "reason": reason})
        self.log(f"robocl-ros: {reason}")

    def publish_safe(self, reason: str, safety: bool = True) -> bool:
        """Publish the safe command (rate-limited to once per period while the reason stays the same)."""
        now = time.monotonic()
        with self._pub_lock:
            changed = self.mode not in ("safe", "idle") or self.reason != reason
            if not changed and now - self._last_cmd_at < 0.9 * self.settings.period_s:
                return False
            self.transport.publish_command(self.safe.copy())
            self._last_cmd_at = now
            if changed:
                self.mode, self.reason = ("safe" if safety else "idle"), reason
                if safety:
                    self._event(reason)
        if changed:
            self._publish_status(force=True)
        return True

    def _publish_action(self, action: np.ndarray) -> bool:
        cmd, substituted = safe_command(action, self.low, self.high, self.safe)
        if substituted:
            self.nonfinite_substitutions += 1
            return self.publish_safe("non-finite command")
        resumed = False
        with self._pub_lock:
            if self._plan_abandoned:
                return False
            self.transport.publish_command(cmd)
            self._last_cmd_at = time.monotonic()
            if self.mode != "ok":
                resumed = self.mode == "safe"
                self.mode, self.reason = "ok", ""
        if resumed:
            self.log("robocl-ros: inputs healthy again, control resumed")
        return True

    # ---- health ---------------------------------------------------------------------------------
    def input_problem(self, odom: _Odom | None, now: float) -> str | None:
        if odom is None:
            return "no odometry yet"
        if self._stale(odom, now):
            return "odometry stale"
        # wrong shape, non-finite or out of range (controller.state_limit is settings.state_limit); checked here,
        # before the mission reads the position from it
        return self.controller.is_healthy(odom.state)

    def _stale(self, odom: _Odom, now: float) -> bool:
        timeout = self.settings.odom_timeout_s
        if self.clock.sim:
            return self.clock.now() - odom.rx_node > timeout or now - odom.rx > timeout + 1.0
        return now - odom.rx > timeout

    def _watchdog(self) -> None:
        interval = self.settings.check_interval()
        while not self.stop_event.wait(interval):
            now = time.monotonic()
            with self._lock:
                odom = self._odom
            started = self._plan_started
            if started is not None and now - started > self.settings.plan_deadline_s and not self._plan_abandoned:
                with self._pub_lock:
                    self._plan_abandoned = True
                self.publish_safe("plan deadline overrun")
                continue
            if odom is None:
                self.publish_safe("no odometry yet", safety=False)
                continue
            if self._stale(odom, now):
                self.publish_safe("odometry stale")

    # ---- control loop ---------------------------------------------------------------------------
    def _take_mission(self) -> None:
        with self._lock:
            pts, self._new_mission = self._new_mission, None
        if pts is None:
            return
        if self.mission is not None and self.mission.waypoints.shape == pts.shape and np.allclose(
                self.mission.waypoints, pts):
            return
        timeout = max(1, round(self.settings.waypoint_timeout_s / self.settings.period_s))
        self.mission = Mission(pts, self.settings.reach_radius, timeout)
        self.controller.reset()
        self._prev = None
        self.log(f"robocl-ros: new mission with {len(pts)} waypoints")

    def step(self, scheduled: float) -> None:
        """One control cycle (called by `run` at each tick)."""
        tick = time.monotonic()
        self.cycle += 1
        self._take_mission()
        with self._lock:
            odom = self._odom
        problem = self.input_problem(odom, tick)
        if problem:
            self._prev = None
            self.publish_safe(problem, safety=problem != "no odometry yet")
            self._log_cycle(scheduled, tick, odom, math.nan, math.nan, "safe")
            return
        mission = self.mission
        if mission is None or mission.done:
            self._prev = None
            self.publish_safe("no mission" if mission is None else "mission complete", safety=False)
            self._log_cycle(scheduled, tick, odom, math.nan, math.nan, "idle")
            return
        event = mission.update(odom.state)
        if event:
            self.log(f"robocl-ros: waypoint {mission.index}/{len(mission.waypoints)} {event}")
            if mission.done:
                self.publish_safe("mission complete", safety=False)
                self._log_cycle(scheduled, tick, odom, math.nan, math.nan, "idle")
                return
        self.set_goal(mission.goal)
        planned_before = self.controller.last_planned
        refusals = self.controller.stats.safety_events.count
        with self._pub_lock:
            self._plan_abandoned = False
        self._plan_started = time.monotonic()
        t0 = time.perf_counter()
        action = self.controller.act(odom.state)
        plan_ms = (time.perf_counter() - t0) * 1e3
        self._plan_started = None
        if plan_ms > self.settings.plan_deadline_s * 1e3 and not self._plan_abandoned:
            with self._pub_lock:
                self._plan_abandoned = True
            self.publish_safe("plan deadline overrun")
        change = self.budget.update(plan_ms)  # repeated overruns: fewer samples, so the next plans fit
        if change:
            self._event_info(change)
            self._publish_status(force=True)
        # the Controller refused to plan (model/planner/refiner fault): its safe action, counted here as well
        events = self.controller.stats.safety_events
        refused = events[-1].reason if events.count > refusals else None
        # inputs may have gone bad while planning; the watchdog may have abandoned this plan
        late = self.input_problem(self._odom, time.monotonic())
        published = False if late or refused else self._publish_action(action)
        pub = time.monotonic() if published else math.nan
        if late or refused:
            self.publish_safe(late or refused)
        self._log_cycle(scheduled, tick, odom, pub, plan_ms, "ok" if published else "safe")
        self._learn(odom, action if published else None, planned_before)

    def _learn(self, odom: _Odom, action: np.ndarray | None, planned_before) -> None:
        """Learn from (previous state, previous command, this state), after this cycle's command is out."""
        prev, self._prev = self._prev, None
        if action is not None:
            self._prev = (odom.state, action, odom.stamp or odom.rx, odom.seq)
        if prev is None or not self.settings.learn or prev[3] == odom.seq:
            return
        gap = (odom.stamp or odom.rx) - prev[2]
        if abs(gap - self.settings.model_dt) > self.settings.learn_dt_tolerance * self.settings.model_dt:
            return  # not one model step apart (dropped or late odometry): not a valid transition
        # compared against the plan made from the *previous* state (this cycle's act has planned since)
        n_err = self.controller.stats.pred_sq_err.count
        self.controller.observe(prev[0], prev[1], odom.state, planned=planned_before)
        self.learned += 1
        if self.controller.stats.pred_sq_err.count > n_err and self.regime.update(
                self.controller.stats.pred_sq_err[-1]):
            self._event_info("regime change detected")

    def _event_info(self, what: str) -> None:
        self.event_log.append({"t": time.monotonic(), "cycle": self.cycle, "reason": what})
        self.log(f"robocl-ros: {what}")

    def _log_cycle(self, scheduled: float, tick: float, odom: _Odom | None, pub: float, plan_ms: float,
                   mode: str) -> None:
        self.cycles.add((self.cycle, scheduled, tick, odom.stamp if odom else math.nan,
                         odom.rx if odom else math.nan, pub, plan_ms, mode))
        self._publish_status()
        self._maybe_checkpoint()

    def run(self) -> None:
        """The control loop; returns after `stop()` (then saves a final checkpoint)."""
        watchdog = threading.Thread(target=self._watchdog, name="robocl-watchdog", daemon=True)
        watchdog.start()
        period = self.settings.period_s
        try:
            if self.clock.sim:
                while not self.stop_event.is_set() and not self.clock.started:
                    self.stop_event.wait(0.01)
            start = self.clock.now()
            wall_start = time.monotonic()
            k = 0
            while not self.stop_event.is_set():
                target = start + k * period
                if not self.clock.wait_until(target, self.stop_event):
                    break
                now = self.clock.now()
                behind = int((now - target) / period)
                if behind > 0:  # overran whole periods: skip them rather than bursting to catch up
                    self.missed_ticks += behind
                    k += behind
                    target = start + k * period
                scheduled = wall_start + k * period if not self.clock.sim else math.nan
                self.step(scheduled)
                k += 1
        finally:
            self.stop_event.set()
            watchdog.join(timeout=2.0)
            self.save_checkpoint(wait=True)

    def stop(self) -> None:
        self.stop_event.set()

    # ---- diagnostics ----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        s = self.controller.stats
        m = self.mission
        return {
            "t": round(self.clock.now(), 4),
            "cycle": self.cycle,
            "mode": self.mode,
            "reason": self.reason,
            "plan_ms": round(s.plan_ms[-1], 3) if s.plan_ms else None,
            "plan_ms_p95": _pct(s.plan_ms[-200:], 95),
            "waypoint": m.index if m else None,
            "waypoints_reached": int(sum(m.reached)) if m else 0,
            "waypoints_total": len(m.waypoints) if m else 0,
            "learned_transitions": self.learned,
            "pred_err": round(s.pred_sq_err[-1], 5) if s.pred_sq_err else None,
            "regime_detections": self.regime.detections,
            "safety_events": dict(self.events),
            "missed_ticks": self.missed_ticks,
            "plan_overruns": self.budget.overruns,
            "population": self.budget.population,
            "planner_budget_reductions": self.budget.reductions,
        }

    def _publish_status(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_status < self.settings.status_period_s:
            return
        self._last_status = now
        self.transport.publish_status(json.dumps(self.status()))

    def timing(self) -> dict[str, Any]:
        """Jitter (tick lateness vs schedule, wall clock only) and odometry-in -> command-out latency."""
        rows = [r for r in self.cycles.rows if r[7] == "ok"]
        lateness = [(r[2] - r[1]) * 1e3 for r in rows if math.isfinite(r[1])]
        latency = [(r[5] - r[4]) * 1e3 for r in rows]
        compute = [(r[5] - r[2]) * 1e3 for r in rows]
        plan = [r[6] for r in rows]
        return {
            "cycles": self.cycle,
            "cycles_ok": len(rows),
            "missed_ticks": self.missed_ticks,
            "jitter_ms_median": _pct(lateness, 50), "jitter_ms_p95": _pct(lateness, 95),
            "latency_ms_median": _pct(latency, 50), "latency_ms_p95": _pct(latency, 95),
            "compute_ms_median": _pct(compute, 50), "compute_ms_p95": _pct(compute, 95),
            "plan_ms_median": _pct(plan, 50), "plan_ms_p95": _pct(plan, 95),
        }

    def write_cycles_csv(self, path: Path) -> None:
        from robocl.utils.io import atomic_write_text

        lines = [",".join(CYCLE_COLUMNS)]
        lines += [",".join(f"{v:.6f}" if isinstance(v, float) else str(v) for v in row) for row in self.cycles.rows]
        atomic_write_text(path, "\n".join(lines) + "\n")

    # ---- checkpoints ----------------------------------------------------------------------------
    def _maybe_checkpoint(self) -> None:
        if self.settings.checkpoint_path and self.settings.learn and (
                time.monotonic() - self._last_checkpoint >= self.settings.checkpoint_every_s):
            self.save_checkpoint()

    def save_checkpoint(self, wait: bool = False) -> None:
        """Snapshot the strategy (model + optimizer) here, write it atomically on a helper thread."""
        path = self.settings.checkpoint_path
        if not path or not self.settings.learn:
            return
        self._last_checkpoint = time.monotonic()
        payload = {"strategy": copy.deepcopy(self.controller.strategy.state_dict()),
                   "meta": {"learned_transitions": self.learned, "saved_at": time.time()}}
        if self._save_thread is not None:
            self._save_thread.join()
        self._save_thread = threading.Thread(target=atomic_torch_save, args=(payload, Path(path)), daemon=False)
        self._save_thread.start()
        if wait:
            self._save_thread.join()
