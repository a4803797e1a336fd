"""The ROS bridge without a ROS graph: imports without ROS, install hints, usage errors, message
conversion, the NaN guard, the watchdog and checkpoints of the node core (real Controller, fake transport)."""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import RecordingTransport
from robocl_ros import convert
from robocl_ros.core import NodeCore, NodeSettings, WallClock
from robocl_ros.robots import BINDINGS, make_cost

pytestmark = pytest.mark.ros

BLOCK_ROS = '''
import sys
class _NoRos:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("rclpy", "rospy", "rosgraph"):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None
sys.meta_path.insert(0, _NoRos())
'''


@pytest.fixture()
def no_ros_env(tmp_path, monkeypatch) -> dict[str, str]:
    """An environment in which rclpy and rospy cannot be imported (as on a machine without ROS)."""
    site = tmp_path / "noros"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCK_ROS)
    import os

    return {**os.environ, "PYTHONPATH": str(site), "ROBOCL_ROS1_PYTHONPATH": str(tmp_path / "none")}


def test_import_robocl_needs_no_ros(no_ros_env):
    code = ("import sys, robocl, robocl.control, robocl_ros, robocl_ros.core, robocl_ros.convert, robocl.cli.ros; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('rclpy', 'rospy', 'rosgraph')]; "
            "assert not bad, bad; print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=no_ros_env, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


@pytest.mark.parametrize("transport,hint", [("ros2", "pip install 'robocl[ros2]'"),
                                            ("ros1", "apt-get install -y --no-install-recommends ros-core")])
def test_robocl_ros_without_ros_says_how_to_install(no_ros_env, tmp_path, transport, hint):
    exe = Path(sys.executable).with_name("robocl-ros")
    proc = subprocess.run([str(exe), f"ros.transport={transport}", f"hydra.run.dir={tmp_path / 'run'}"],
                          capture_output=True, text=True, env=no_ros_env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("robocl-ros: error:") and hint in lines[0], lines[0]
    assert not (tmp_path / "run").exists()  # nothing is created for a usage error


@pytest.mark.parametrize("args,key", [
    (["ros.transport=ros3"], "ros.transport=ros3"),
    (["ros.rate_hz=0"], "ros.rate_hz"),
    (["ros.rate_hz=10"], "ros.rate_hz=10"),  # learning needs rate = 1/robot.dt
    (["ros.method=mppi_fast"], "mppi_fast"),
    (["planner=cem"], "ros.method: mppi_online plans with mppi, but planner=cem"),  # not MPPI with CEM's settings
    (["robot=quadrotor", "ros.topics.waypoints_type=list"], "ros.topics.waypoints_type"),
    (["ros.watchdog.budget_factor=1.5"], "ros.watchdog.budget_factor"),
    (["ros.watchdog.overrun_limit=30"], "overrun_limit=30"),  # more than the window it is counted over
    (["ros.watchdog.overrun_window=2.5"], "ros.watchdog.overrun_window"),
])
def test_robocl_ros_bad_config_is_one_line_exit_2(tmp_path, capsys, args, key):
    from robocl.cli import ros

    with pytest.raises(SystemExit) as exit_:
        ros.main([*args, f"hydra.run.dir={tmp_path / 'run'}"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    assert len(err.strip().splitlines()) == 1 and key in err, err
    assert not (tmp_path / "run").exists()


def test_robocl_ros_sim_bad_config_is_exit_2(tmp_path, capsys):
    from robocl.cli import ros_sim

    with pytest.raises(SystemExit) as exit_:
        ros_sim.main(["robot=ugv", "task.map=no_such_course", f"hydra.run.dir={tmp_path}"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "no_such_course" in err and "Traceback" not in err, err


# ---- conversion (REP-103 / REP-105) ---------------------------------------------------------------
def test_odometry_round_trip_ugv_and_quadrotor():
    rng = np.random.default_rng(0)
    for _ in range(20):
        s = np.array([*rng.uniform(-5, 5, 2), rng.uniform(-3, 3), *rng.uniform(-1, 1, 3)])
        assert np.allclose(convert.ugv_state(convert.ugv_odometry(s)), s, atol=1e-9)
        q = np.concatenate([rng.uniform(-5, 5, 3), rng.uniform(-1, 1, 3), rng.uniform(-0.5, 0.5, 3),
                            rng.uniform(-1, 1, 3)])
        assert np.allclose(convert.quad_state(convert.quad_odometry(q)), q, atol=1e-9)
    # yaw 90 deg, driving forward at 1 m/s in the body frame: world +y, forward speed 1
    f = convert.OdomFields(np.zeros(3), convert.euler_zyx_to_quat(0, 0, math.pi / 2), np.array([1.0, 0, 0]),
                           np.array([0, 0, 0.5]))
    assert np.allclose(convert.ugv_state(f), [0, 0, math.pi / 2, 1, 0, 0.5])
    assert np.allclose(convert.quad_state(f)[3:6], [0, 1, 0], atol=1e-12)


# ---- the node core with a real Controller ----------------------------------------------------------
def make_core(robot: str, tmp_path: Path, period: float = 0.2, **settings) -> tuple[NodeCore, RecordingTransport]:
    from robocl.build.controller import make_controller
    from robocl.build.methods import parse_method
    from robocl.build.models import make_model
    from robocl.cli.app import compose

    exp = {"ugv": "ros_ugv", "quadrotor": "ros_quad"}[robot]
    cfg, _ = compose([f"experiment={exp}", "dynamics.ensemble_size=2", "dynamics.hidden_size=32",
                      "planner.population=64"])
    torch.manual_seed(0)
    cost, set_goal = make_cost(robot, int(cfg.planner.horizon))
    controller = make_controller(cfg, parse_method("mppi_online"), make_model(cfg), cost, 0)
    transport = RecordingTransport()
    s = NodeSettings(period_s=period, odom_timeout_s=settings.pop("odom_timeout_s", period),
                     plan_deadline_s=settings.pop("plan_deadline_s", 5.0), state_limit=1000.0, learn=True,
                     model_dt=float(cfg.robot.dt), checkpoint_path=str(tmp_path / "ckpt" / "node.pt"), **settings)
    core = NodeCore(controller, transport, s, lambda g: set_goal(cost, g), np.asarray(cfg.robot.action_low),
                    np.asarray(cfg.robot.action_high), WallClock(), log=lambda _: None)
    return core, transport


@pytest.mark.parametrize("robot", ["ugv", "quadrotor"])
def test_nan_in_any_odometry_field_never_gives_a_nonfinite_command(robot, tmp_path):
    core, transport = make_core(robot, tmp_path, odom_timeout_s=10.0)
    binding = BINDINGS[robot]
    dims = binding.pos_dims
    core.on_waypoints(np.array([[1.0, 0.0, 1.0][:dims], [2.0, 1.0, 1.0][:dims]]))
    good = binding.odom_from_state(np.r_[[0.0, 0.0, 1.0][:dims], np.zeros(binding.state_dim - dims)])
    fields = [(name, i) for name in ("position", "quaternion", "linear", "angular")
              for i in range(len(getattr(good, name)))]
    for bad in (math.nan, -math.inf, 1e30):
        for name, i in fields:
            f = convert.OdomFields(*(getattr(good, n).copy() for n in ("position", "quaternion", "linear", "angular")))
            getattr(f, name)[i] = bad
            core.on_odometry(binding.state_from_odom(f), time.time())
            core.step(time.monotonic())  # (a repeated safe command is rate-limited to one per period)
            cmd = transport.commands[-1][1]
            assert np.all(np.isfinite(cmd)), (name, i, bad, cmd)
            unused = robot == "ugv" and (name, i) == ("position", 2)  # a planar robot ignores z
            if not math.isfinite(bad) and not unused:  # a NaN/inf in a used field: the safe command
                assert core.mode == "safe" and core.reason == "non-finite state", (name, i, bad, core.reason)
                assert np.array_equal(cmd, core.safe), (name, i, bad, cmd)
        core.on_odometry(binding.state_from_odom(good), time.time())
        core.step(time.monotonic())
        assert core.mode == "ok" and np.all(np.isfinite(transport.commands[-1][1]))  # resumes when healthy
    assert core.events["non-finite state"] > 0
    assert all(np.all(np.isfinite(c)) for _, c in transport.commands)


def test_non_finite_plan_is_replaced_by_the_safe_command(tmp_path):
    core, transport = make_core("ugv", tmp_path)
    core.on_waypoints(np.array([[1.0, 0.0]]))
    core.on_odometry(np.zeros(6), time.time())
    core.controller.act = lambda state: np.array([math.nan, 0.3])  # a broken planner/refiner
    core.step(time.monotonic())
    assert np.array_equal(transport.commands[-1][1], [0.0, 0.0]) and core.nonfinite_substitutions == 1


def test_watchdog_publishes_the_safe_command_within_two_periods_of_lost_odometry(tmp_path):
    period = 0.1
    core, transport = make_core("ugv", tmp_path, period=period)
    core.on_waypoints(np.array([[50.0, 0.0]]))
    feeding = threading.Event()
    feeding.set()
    last_odom = [0.0]

    def odometry() -> None:  # 50 Hz odometry until told to stop (the publisher dies)
        while feeding.is_set():
            core.on_odometry(np.array([0.0, 0.0, 0.0, 0.5, 0.0, 0.0]), time.time())
            last_odom[0] = time.monotonic()
            time.sleep(0.02)

    feeder = threading.Thread(target=odometry, daemon=True)
    feeder.start()
    loop = threading.Thread(target=core.run, daemon=True)
    loop.start()
    try:
        deadline = time.monotonic() + 20
        while core.mode != "ok" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert core.mode == "ok"
        time.sleep(0.5)
        feeding.clear()
        feeder.join()
        lost = last_odom[0]
        time.sleep(3 * period)
        with transport.lock:
            after = [(t, c) for t, c in transport.commands if t > lost]
        first_safe = next(t for t, c in after if np.array_equal(c, [0.0, 0.0]))
        assert first_safe - lost <= 2 * period, first_safe - lost
        assert core.mode == "safe" and core.reason == "odometry stale"
        moving_after = [t for t, c in after if t > first_safe and not np.array_equal(c, [0.0, 0.0])]
        assert not moving_after
        # odometry back: control resumes
        feeding.set()
        feeder = threading.Thread(target=odometry, daemon=True)
        feeder.start()
        time.sleep(4 * period)
        assert core.mode == "ok"
    finally:
        feeding.clear()
        core.stop()
        loop.join(10)
    assert (tmp_path / "ckpt" / "node.pt").exists()  # saved on shutdown


def test_plan_overrunning_its_deadline_gives_the_safe_command(tmp_path):
    core, transport = make_core("ugv", tmp_path, period=0.1, plan_deadline_s=0.05)
    core.on_waypoints(np.array([[5.0, 0.0]]))
    core.on_odometry(np.zeros(6), time.time())
    act = core.controller.act

    def slow(state):
        time.sleep(0.2)
        return act(state)

    core.controller.act = slow
    stop = threading.Event()
    watchdog = threading.Thread(target=core._watchdog, daemon=True)
    watchdog.start()
    t0 = time.monotonic()

    def keep_fresh():
        while not stop.is_set():
            core.on_odometry(np.zeros(6), time.time())
            time.sleep(0.01)

    threading.Thread(target=keep_fresh, daemon=True).start()
    try:
        core.step(t0)
    finally:
        stop.set()
        core.stop()
        watchdog.join(2)
    assert core.events["plan deadline overrun"] == 1
    safe_at = [t for t, c in transport.commands if np.array_equal(c, [0.0, 0.0])]
    assert safe_at and safe_at[0] - t0 < 0.05 + 2 * 0.1
    assert all(np.array_equal(c, [0.0, 0.0]) for _, c in transport.commands)  # the late plan was dropped


def test_checkpoint_is_atomic_and_restores_what_was_learned(tmp_path):
    core, _ = make_core("ugv", tmp_path)
    for p in core.controller.model.parameters():
        torch.nn.init.normal_(p)
    core.learned = 7
    core.save_checkpoint(wait=True)
    path = tmp_path / "ckpt" / "node.pt"
    assert path.exists() and [p.name for p in path.parent.iterdir()] == ["node.pt"]  # no temporary left behind
    state = torch.load(path, map_location="cpu", weights_only=False)
    assert state["meta"]["learned_transitions"] == 7
    fresh, _ = make_core("ugv", tmp_path / "other")
    fresh.controller.strategy.load_state_dict(state["strategy"])
    for a, b in zip(core.controller.model.state_dict().values(), fresh.controller.model.state_dict().values()):
        assert torch.equal(a, b)


def test_launch_files_ship_with_the_package_and_name_real_parameters():
    import ast
    import xml.etree.ElementTree as ET
    from importlib.resources import files

    from robocl_ros.params import NODE_PARAMS

    names = {p.name for p in NODE_PARAMS}
    launch = files("robocl_ros").joinpath("launch")
    tree = ast.parse(launch.joinpath("robocl.launch.py").read_text())
    params = next(n.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "PARAMS")
    assert {k.value for k in params.keys} == names  # ROS 2: every node parameter is a launch argument
    root = ET.fromstring(launch.joinpath("robocl.launch").read_text())
    node = root.find("node")
    assert node.get("pkg") == "robocl_ros" and node.get("type") == "robocl_ros_node"
    assert {p.get("name") for p in node.findall("param")} == names  # ROS 1: likewise
    pkg = files("robocl_ros")
    assert ET.fromstring(pkg.joinpath("package.xml").read_text()).findtext("name") == "robocl_ros"
    assert "robocl-ros ros.transport=ros1" in pkg.joinpath("scripts", "robocl_ros_node").read_text()


def test_robocl_ros_sim_flies_the_quadrotor_with_task_physics():
    """robocl-ros-sim robot=quadrotor task.physics.*: the simulated quad carries the payload and the weak
    motor the user asked for (the foreign-robot acceptance flies it), as robocl-run's quad_continual does."""
    from omegaconf import OmegaConf
    from robocl_ros import simnode

    cfg = OmegaConf.create({"task": {"physics": {"payload_kg": 0.0, "friction": 1.0, "payload_frac": 0.4,
                                                 "motor_efficiency": [0.8, 1, 1, 1], "wind": [0, 0, 0],
                                                 "gust_std": 0.0}}})
    params = simnode.physics(cfg, "quadrotor")
    assert params.payload_frac == 0.4 and params.motor_efficiency == (0.8, 1.0, 1.0, 1.0)
    env = simnode.make_env("quadrotor", 25.0, params)
    heavy = float(env.model.body_subtreemass[env.model.body("quad").id])
    light = simnode.make_env("quadrotor", 25.0, simnode.physics(OmegaConf.create({"task": {}}), "quadrotor"))
    assert heavy == pytest.approx(1.4 * float(light.model.body_subtreemass[light.model.body("quad").id]), rel=0.02)


def test_robocl_ros_sim_bad_quadrotor_physics_is_one_line_exit_2(tmp_path, capsys):
    from robocl.cli import ros_sim

    with pytest.raises(SystemExit) as exit_:
        ros_sim.main(["robot=quadrotor", "task.physics.motor_efficiency=[0.8,1]", f"hydra.run.dir={tmp_path}"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert "task.physics" in err and "motor_efficiency" in err and "Traceback" not in err, err


# ---- the planner budget under repeated deadline overruns --------------------------------------------
def slow_down(planner, seconds_per_sample: float):
    """A slower computer: every rollout step of the real dynamics takes `seconds_per_sample` per sampled
    sequence longer (planning time grows with the population, as on a loaded CPU). Returns the undo."""
    step = planner.dynamics

    def slow(states, actions):
        time.sleep(seconds_per_sample * states.shape[0])
        return step(states, actions)

    planner.dynamics = slow
    return lambda: setattr(planner, "dynamics", step)


def drive_steps(core, state: np.ndarray, n: int, transport=None, planned: list[bool] | None = None) -> list[bool]:
    """n control cycles on fresh odometry; whether each one's plan overran its deadline (and, into `planned`,
    whether each cycle ended in mode ok with a planned, not the safe, command on `transport`)."""
    overran = []
    for _ in range(n):
        core.on_odometry(state, time.time())
        before = core.budget.overruns
        core.step(time.monotonic())
        overran.append(core.budget.overruns > before)
        if planned is not None:
            planned.append(core.mode == "ok" and not np.array_equal(transport.commands[-1][1], core.safe))
    return overran


def test_repeated_plan_overruns_shrink_the_planner_budget_until_plans_fit_then_it_recovers(tmp_path, one_torch_thread):
    import json

    deadline = 0.05  # 64 samples x 10 steps x 200 us = 128 ms, 32 -> 64 ms: overrun; 16 -> 32 ms: fits
    core, transport = make_core("quadrotor", tmp_path, period=0.04, plan_deadline_s=deadline, odom_timeout_s=10.0,
                                overrun_limit=3, overrun_window=10, budget_factor=0.5, budget_floor=0.25,
                                budget_restore_after=5)
    planner = core.controller.planner
    assert planner.population == 64 and planner.horizon == 10 and core.budget.floor == 16
    undo = slow_down(planner, 200e-6)
    core.on_waypoints(np.array([[5.0, 0.0, 1.0]]))
    hover_at_1m = np.r_[0.0, 0.0, 1.0, np.zeros(9)]
    planned: list[bool] = []
    overran = drive_steps(core, hover_at_1m, 30, transport, planned)
    # each overrun still gives the safe command (hover); 3 of them at 64 samples -> 32, 3 more -> 16 (the floor)
    assert overran[:6] == [True] * 6, overran
    assert core.budget.reductions == 2 and planner.population == 16 and core.budget.min_population == 16
    assert core.events["plan deadline overrun"] >= 1
    # then the plans fit (a stall of a loaded machine may still overrun one)
    assert sum(overran[6:]) <= 2, (overran, core.controller.stats.plan_ms)
    # planned commands again: every cycle that fit its deadline ended in mode ok with a planned command, and so
    # did at least one of the last three (a stall may land on the very last one)
    assert all(p for p, o in zip(planned[6:], overran[6:]) if not o), (planned, overran)
    assert any(planned[-3:]), (planned, overran)
    reasons = [e["reason"] for e in core.event_log]
    assert any(r.startswith("planner budget reduced: population 64 -> 32") for r in reasons), reasons
    assert any(r.startswith("planner budget reduced: population 32 -> 16") for r in reasons), reasons
    status = json.loads(transport.status[-1])
    assert status["population"] == 16 and status["planner_budget_reductions"] == 2
    assert status["plan_overruns"] == core.budget.overruns >= 6
    # the machine is fast again: plans well within the deadline restore the budget step by step
    undo()
    overran_fast = drive_steps(core, hover_at_1m, 14)
    assert not any(overran_fast) and planner.population == 64, (overran_fast, planner.population, core.event_log,
                                                                 core.controller.stats.plan_ms[-14:])
    assert core.budget.restores == 2 and core.budget.reductions == 2
    summary = core.budget.summary()
    assert summary["population_min"] == 16 and summary["population_final"] == 64
    low, high = core.low, core.high
    for _, c in transport.commands:
        assert np.all(np.isfinite(c)) and np.all(c >= low) and np.all(c <= high), c


def test_fast_plans_keep_the_planner_budget(tmp_path):
    core, transport = make_core("ugv", tmp_path, period=0.2, plan_deadline_s=0.5, budget_restore_after=1)
    core.on_waypoints(np.array([[5.0, 0.0]]))
    overran = drive_steps(core, np.zeros(6), 20)
    assert not any(overran) and core.budget.reductions == 0 and core.budget.restores == 0
    assert core.controller.planner.population == 64 and core.mode == "ok"
    assert core.budget.summary()["plan_overruns"] == 0


def test_plan_budget_floor_and_switches():
    """PlanBudget on a real planner, fed plan times: the floor holds, floor 1.0 never degrades, restore 0 never
    restores, and a limit above the window is refused."""
    from robocl_ros.core import PlanBudget

    from robocl.planning.costs import QuadraticGoalCost
    from robocl.planning.mppi import MPPI

    def planner(p: int) -> MPPI:
        return MPPI(lambda s, a: s, QuadraticGoalCost(torch.zeros(2), torch.ones(2)), [-1.0, -1.0], [1.0, 1.0],
                    population=p)

    b = PlanBudget(planner(200), 0.032, limit=2, window=4, factor=0.5, floor_frac=0.25, restore_after=0)
    for _ in range(40):
        b.update(50.0)
    assert b.population == 50 == b.floor and b.reductions == 2 and b.overruns == 40
    for _ in range(1000):
        b.update(1.0)
    assert b.population == 50 and b.restores == 0
    never = PlanBudget(planner(200), 0.032, limit=1, window=1, floor_frac=1.0)
    for _ in range(10):
        never.update(50.0)
    assert never.population == 200 and never.reductions == 0 and never.overruns == 10
    tiny = PlanBudget(planner(3), 0.032, limit=1, window=1, factor=0.9, floor_frac=0.01)
    tiny.update(50.0)
    assert tiny.population == 2  # always at least one fewer sample, never below 2
    with pytest.raises(ValueError):
        PlanBudget(planner(200), 0.032, limit=5, window=4)
