"""Property-based (hypothesis) tests of the ROS node core (robocl_ros.core.NodeCore), the last step before a
command reaches a robot's motors.

Whatever the odometry state (NaN, ±inf, huge, denormal, wrong shape) and whatever the model does (returns NaN
or huge values, raises, runs past the plan deadline) or the refiner does (returns NaN or huge values, raises):
every command that leaves the node is finite and inside the robot's action box; after a fault the safe command
(stop for the UGV, hover for the quadrotor) comes out within two control periods; each event is counted in the
node's safety-event counters (status topic, results.json); and control resumes on healthy inputs.

Real code throughout, as on a robot: the ros_ugv/ros_quad configs, a real (small) ensemble and the MPPI planner
assembled by robocl.build, the node core with its watchdog thread; only the transport is a recorder. Faults are
injected where they happen: inside the model's step as the planner calls it, and in the refiner."""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter

import numpy as np
import pytest
import torch
from conftest import FaultyRefiner, RecordingTransport
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from robocl_ros.core import NodeCore, NodeSettings, WallClock
from robocl_ros.robots import make_cost

from robocl.build.controller import make_controller
from robocl.build.methods import parse_method
from robocl.build.models import make_model
from robocl.cli.app import compose

PERIOD = 0.1  # control period (s)
DEADLINE = 0.1  # plan deadline (s): a healthy plan of this small planner takes a few ms
SLOW_PLAN = 0.25  # a slowed model makes one plan take this long (s), well past the deadline
MODEL_FAULTS = ("none", "nan", "huge", "raise", "slow")
REFINER_FAULTS = ("none", "nan", "huge", "raise")
GOALS = {"ugv": [50.0, 0.0], "quadrotor": [50.0, 0.0, 1.0]}  # never reached: the mission stays active


class Setup:
    """One robot's node core (watchdog running) with a model fault switch and a faulty refiner."""

    def __init__(self, robot: str) -> None:
        exp = {"ugv": "ros_ugv", "quadrotor": "ros_quad"}[robot]
        self.cfg, _ = compose([f"experiment={exp}", "dynamics.ensemble_size=2", "dynamics.hidden_size=16",
                               "planner.population=32"])
        cfg = self.cfg
        torch.manual_seed(0)
        horizon = int(cfg.planner.horizon)
        cost, set_goal = make_cost(robot, horizon)
        controller = make_controller(cfg, parse_method("mppi_online"), make_model(cfg), cost, 0)
        controller.refiner = self.refiner = FaultyRefiner()
        self.model_fault = "none"
        step = controller.planner.dynamics

        def dynamics(states, actions):  # the model as the planner calls it, with a fault injected on demand
            if self.model_fault == "raise":
                raise RuntimeError("model fault")
            if self.model_fault == "slow":  # a loaded/slow computer: the plan runs past its deadline
                time.sleep(SLOW_PLAN / horizon)
            out = step(states, actions)
            return out * math.nan if self.model_fault == "nan" else out * 1e30 if self.model_fault == "huge" else out

        controller.planner.dynamics = dynamics
        self.transport = RecordingTransport()
        node = NodeSettings(period_s=PERIOD, odom_timeout_s=60.0, plan_deadline_s=DEADLINE, state_limit=1000.0,
                            learn=True, model_dt=float(cfg.robot.dt), waypoint_timeout_s=1e6)
        self.low, self.high = np.asarray(cfg.robot.action_low, float), np.asarray(cfg.robot.action_high, float)
        self.core = NodeCore(controller, self.transport, node, lambda g: set_goal(cost, g), self.low, self.high,
                             WallClock(), log=lambda _: None)
        self.safe = self.core.safe
        self.dim = controller.model.codec.state_dim
        self.healthy = np.zeros(self.dim)
        if robot == "quadrotor":
            self.healthy[2] = 1.0  # hovering at 1 m
        self.core.on_waypoints(np.array([GOALS[robot]]))
        self.watchdog = threading.Thread(target=self.core._watchdog, name="test-watchdog", daemon=True)
        self.watchdog.start()
        self.seen: Counter[str] = Counter()  # examples by the fault they exercised

    def cycle(self, state) -> tuple[float, int]:
        """One control cycle on fresh odometry `state`; (its start time, index of its first command)."""
        with self.transport.lock:
            first = len(self.transport.commands)
        t0 = time.monotonic()
        self.core.on_odometry(state, time.time())
        self.core.step(t0)
        return t0, first

    def commands_since(self, first: int) -> list[tuple[float, np.ndarray]]:
        with self.transport.lock:
            return list(self.transport.commands[first:])

    def check_commands(self, cmds) -> None:
        for _, c in cmds:
            assert c.shape == self.low.shape and np.all(np.isfinite(c)), c
            assert np.all(c >= self.low) and np.all(c <= self.high), c

    def is_safe(self, c: np.ndarray) -> bool:
        return np.array_equal(c, self.safe)


BUILT: dict[str, Setup] = {}


def setup(robot: str) -> Setup:
    if robot not in BUILT:
        BUILT[robot] = Setup(robot)
    return BUILT[robot]


@pytest.fixture(scope="module", autouse=True)
def _one_thread_then_stop_watchdogs():
    threads = torch.get_num_threads()  # one torch thread: two on a loaded 2-core machine stall plans for 100+ ms
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    for s in BUILT.values():
        s.core.stop()
        s.watchdog.join(2)
    for robot, s in BUILT.items():
        print(f"\nnode core properties, {robot}: {s.seen.total()} examples: {dict(sorted(s.seen.items()))}")


values = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32),
                   st.sampled_from([0.0, 1e-45, -1e-38, 5e-324, 1e4, -1e5, 3.4e38, 1e308]))


STATE_KINDS = ("healthy", "nan", "inf", "huge", "any", "wrong shape")


@st.composite
def states(draw, dim: int, kinds):
    """Odometry states of every kind: healthy (denormals included), one entry NaN/±inf/huge, any floats,
    wrong length, 2-D, a scalar."""
    kind = draw(kinds)
    x = np.array(draw(st.lists(st.floats(-10, 10, allow_subnormal=True), min_size=dim, max_size=dim)))
    if kind in ("nan", "inf", "huge"):
        bad = {"nan": st.just(math.nan), "inf": st.sampled_from([math.inf, -math.inf]),
               "huge": st.sampled_from([1e3 + 1, -1e4, 3.4e38, -1e308])}[kind]
        x[draw(st.integers(0, dim - 1))] = draw(bad)
    elif kind == "any":
        x = np.array(draw(st.lists(values, min_size=dim, max_size=dim)), dtype=float)
    elif kind == "wrong shape":
        n = draw(st.sampled_from([dim - 1, dim + 1, 0, 2 * dim]))
        x = np.array(draw(st.lists(values, min_size=n, max_size=n)), dtype=float)
        shape = draw(st.sampled_from(["flat", "row", "column", "scalar"]))
        x = x[None] if shape == "row" else x[:, None] if shape == "column" else np.float64(
            x[0] if n else 0.0) if shape == "scalar" else x
    return x


def expected_reasons(s: Setup, state, model: str, refiner: str) -> list[str] | None:
    """The safety events this cycle must count, in order; None where a safe command is not required."""
    problem = s.core.controller.is_healthy(np.asarray(state, dtype=float))
    if problem:
        return [problem]
    reasons = ["plan deadline overrun"] if model == "slow" else []
    if model == "raise":
        return [*reasons, "planner error (RuntimeError)"]
    if model == "nan":
        return [*reasons, "no finite model rollout"]
    if model == "huge":
        return None  # the predictions overflow in most rollouts, maybe not all: a plan may still be made
    if refiner == "raise":
        return [*reasons, "refiner error (RuntimeError)"]
    if refiner == "nan":
        return [*reasons, "non-finite action"]
    return reasons


def scenario(data, s: Setup, fault: str):
    """(state, model fault, refiner fault) with `fault` the one that must strike ("any": all drawn freely)."""
    healthy = st.just("healthy")
    state = data.draw(states(s.dim, st.sampled_from(STATE_KINDS) if fault in ("state", "any") else healthy),
                      label="state")
    if fault == "state":
        while s.core.controller.is_healthy(np.asarray(state, dtype=float)) is None:
            state = data.draw(states(s.dim, st.sampled_from(STATE_KINDS[1:])), label="bad state")
    models = {"model": ("nan", "huge", "raise"), "slow": ("slow",), "refiner": ("none",)}.get(fault, MODEL_FAULTS)
    refiners = ("nan", "huge", "raise") if fault == "refiner" else REFINER_FAULTS
    return state, data.draw(st.sampled_from(models), label="model"), data.draw(st.sampled_from(refiners),
                                                                              label="refiner")


@pytest.mark.parametrize("fault", ["state", "model", "refiner", "slow", "any"])
@pytest.mark.parametrize("robot", ["ugv", "quadrotor"])
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_command_is_finite_in_the_box_faults_give_the_safe_command_within_two_periods_and_are_counted(
        robot, fault, data):
    s = setup(robot)
    core = s.core
    state, model, refiner = scenario(data, s, fault)

    # a healthy cycle first: the fault strikes a node that is driving
    s.model_fault, s.refiner.mode = "none", "none"
    _, first = s.cycle(s.healthy)
    s.check_commands(s.commands_since(first))
    driving = core.mode == "ok"
    assert driving or core.reason == "plan deadline overrun", core.reason  # (a stall of a loaded machine)
    events = dict(core.events)
    refusals = len(core.controller.stats.safety_events)
    overruns = core.budget.overruns
    last_before = s.commands_since(0)[-1][1]

    # the faulty cycle
    s.model_fault, s.refiner.mode = model, refiner
    t0, first = s.cycle(state)
    s.model_fault, s.refiner.mode = "none", "none"
    cmds = s.commands_since(first)
    s.check_commands(cmds)
    reasons = expected_reasons(s, state, model, refiner)
    s.seen["huge model output" if reasons is None else "+".join(reasons) or "healthy"] += 1
    usable = core.controller.is_healthy(np.asarray(state, dtype=float)) is None
    if reasons:
        assert s.is_safe(s.commands_since(0)[-1][1]), (reasons, cmds)  # the robot is left stopped / hovering
        fault_at = t0 + (DEADLINE if model == "slow" else 0.0)  # a slow plan is a fault once past its deadline
        first_safe = next((t for t, c in cmds if s.is_safe(c)), None)
        if first_safe is None:  # not repeated within a period: the last command out was already the safe one
            assert s.is_safe(last_before) and not cmds
        else:
            assert first_safe - fault_at <= 2 * PERIOD, (reasons, first_safe - fault_at)
        if model == "slow":
            assert all(s.is_safe(c) for _, c in cmds), cmds  # the late plan was dropped, never published
        for reason in reasons:  # each event counted once (exactly once where the node was driving)
            assert core.events[reason] >= events.get(reason, 0) + (1 if driving else 0), (reason, core.events)
            assert not driving or core.events[reason] == events.get(reason, 0) + 1, (reason, core.events)
        assert core.mode == "safe" and core.reason == reasons[-1], (core.mode, core.reason, reasons)
        status = json.loads(s.transport.status[-1])
        assert status["safety_events"] == dict(core.events) and status["mode"] == "safe", status
    elif reasons == [] and driving:  # healthy inputs (or a huge refiner output, clipped into the box)
        assert core.mode == "ok" or core.reason == "plan deadline overrun", core.reason
    if usable and model in ("raise", "nan") or (usable and model in ("none", "slow") and refiner in ("raise", "nan")):
        assert len(core.controller.stats.safety_events) == refusals + 1  # the Controller counted its refusal too
    if usable and model == "slow":
        assert core.budget.overruns == overruns + 1

    # healthy again: control resumes
    _, first = s.cycle(s.healthy)
    s.check_commands(s.commands_since(first))
    assert core.mode == "ok" or core.reason == "plan deadline overrun", core.reason


def test_results_json_counts_each_safety_event_of_the_node(tmp_path):
    """The faults as results.json reports them (robocl-ros writes it with node._write_results on shutdown)."""
    from robocl_ros import node

    from robocl.eval.sink import ResultSink

    s = setup("ugv")
    core = s.core
    faults = [(np.full(s.dim, math.nan), "none", "none"), (np.zeros(s.dim + 1), "none", "none"),
              (s.healthy, "raise", "none"), (s.healthy, "nan", "none"), (s.healthy, "none", "raise"),
              (s.healthy, "slow", "none")]
    for state, model, refiner in faults:
        s.model_fault, s.refiner.mode = "none", "none"
        s.cycle(s.healthy)
        s.model_fault, s.refiner.mode = model, refiner
        s.cycle(state)
    s.model_fault, s.refiner.mode = "none", "none"
    s.cycle(s.healthy)
    for reason in ("non-finite state", "state of wrong shape", "planner error (RuntimeError)",
                   "no finite model rollout", "refiner error (RuntimeError)", "plan deadline overrun"):
        assert core.events[reason] >= 1, (reason, core.events)
    node._write_results(s.cfg, tmp_path, core, ResultSink)
    doc = json.loads((tmp_path / "results.json").read_text())
    by_reason = next(v for k, v in _walk(doc) if k == "safety_events_by_reason")
    assert by_reason == dict(core.events)
    assert next(v for k, v in _walk(doc) if k == "safety_events") == sum(core.events.values())
    assert next(v for k, v in _walk(doc) if k == "plan_overruns") == core.budget.overruns >= 1
    s.check_commands(s.commands_since(0))


def _walk(obj):
    """(key, value) of every dict entry in a JSON document, depth first."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k, v
            yield from _walk(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk(v)
