"""ROS 2 end to end over a real graph: `robocl-ros-sim` and `robocl-ros` as separate processes talking
rclpy over loopback (fixed private ROS_DOMAIN_ID, LOCALHOST discovery). The ROS 2 wheels are installed
into this environment if missing; with CI=true nothing here may skip."""

from __future__ import annotations

import json
import os
import random

import numpy as np
import pytest
from conftest import FOREIGN
from robocl_ros import graph

pytestmark = pytest.mark.ros

SMALL = ["dynamics.pretrain.episodes=8", "dynamics.pretrain.steps=120", "dynamics.pretrain.epochs=25",
         "dynamics.ensemble_size=3", "dynamics.hidden_size=64", "planner.population=200", "runtime.threads=1"]
QUAD_SMALL = ["dynamics.pretrain.episodes=12", "dynamics.pretrain.steps=150", "dynamics.pretrain.epochs=30",
              "dynamics.ensemble_size=3", "dynamics.hidden_size=128", "planner.population=200", "planner.horizon=10",
              "runtime.threads=1"]


def ros_ready(transport: str) -> None:
    """Install what is missing; fail under CI, skip elsewhere, if the ROS pieces cannot be had."""
    problem = graph.ensure(transport)
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{transport} is required under CI=true and could not be installed: {problem}")
        pytest.skip(f"{transport} not available and not installable here: {problem}")


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    ros_ready("ros2")
    cache = tmp_path_factory.getbasetemp() / "robocl-cache"  # the session cache of conftest.isolated_cache
    return {**graph.ros2_env(random.randint(1, 100)), "ROBOCL_CACHE_DIR": str(cache), "WANDB_MODE": "offline"}


@pytest.fixture(scope="module")
def ugv_run(env, tmp_path_factory):
    """The node drives the simulated UGV through a short course, sim time at 2x real time."""
    out = tmp_path_factory.mktemp("ros2-ugv")
    ckpt = out / "node.pt"
    sim_row, node_row, log = graph.drive_course(
        out, env,
        ["robot=ugv", "task.map=ugv_short", "ros.use_sim_time=true", "ros.sim.real_time_factor=2",
         "ros.sim.max_time_s=40", "ros.sim.linger_s=0.5"],
        ["robot=ugv", *SMALL, "ros.use_sim_time=true", f"ros.checkpoint.path={ckpt}"])
    return sim_row, node_row, log, ckpt


def test_ros2_node_drives_the_simulated_ugv_through_a_course(ugv_run):
    sim_row, node_row, log, ckpt = ugv_run
    print(f"ROS 2 UGV course: success_rate={sim_row['success_rate']} ({sim_row['waypoints_reached']}/"
          f"{sim_row['waypoints_total']}), x{sim_row['real_time_factor']:.2f} real time, "
          f"{sim_row['commands_received']} commands")
    assert sim_row["success_rate"] == 1.0, sim_row
    assert sim_row["crashes"] == 0 and sim_row["nonfinite_commands"] == 0
    assert node_row["learned_transitions"] > 10 and node_row["cycles_ok"] > 20, node_row  # it learned on board
    assert "(sim time)" in log
    assert ckpt.exists()  # saved on shutdown, atomically (atomic_torch_save)


@pytest.mark.parametrize("param", ["rate_hz:=1000.0", "overrun_window:=0", "budget_restore_after:=2.5"])
def test_ros2_parameters_are_typed_with_ranges(env, tmp_path, param):
    proc = graph.Proc([graph.bin_path("robocl-ros"), "robot=ugv", f"hydra.run.dir={tmp_path}", "--ros-args",
                       "-p", param], tmp_path / "node.log", env)
    code = proc.wait(120)
    proc.stop()
    text = proc.text()
    assert code == 2 and param.split(":=")[0] in text and "Traceback" not in text, text


def test_ros2_watchdog_safe_command_on_killed_odometry_and_nan(env, ugv_run, tmp_path):
    """Wall clock, 5 Hz: NaN odometry for 0.6 s (safe, then resume), then the odometry publisher is
    SIGKILLed: the safe command must reach a listener within two control periods of the last odometry."""
    period = 0.2
    ckpt = ugv_run[3]
    r = graph.kill_trial(tmp_path, env, "ros2", [*SMALL, f"ros.checkpoint.path={ckpt}"], nan_window=(1.0, 1.6))
    assert r["node_code"] == 0, r["node_log"][-2000:]
    assert "loaded on-board checkpoint" in r["node_log"]  # kept what it learned across the restart
    check_kill_trial(r, period, "ROS 2")
    # NaN odometry sent the safe command: asserted where the node publishes it (its event log), as the kill
    # check is; a listener may not be matched to the node's status topic yet that early (seen in CI), so what it
    # heard is printed, not required
    events = json.loads((tmp_path / "node" / "results.json").read_text()).get("events", [])
    assert any(e["reason"] == "non-finite state" for e in events), events
    heard = any(reason == "non-finite state" and mode == "safe" for _, mode, reason in r["rows"]["status"])
    print(f"ROS 2 NaN odometry: the listener {'heard' if heard else 'did not hear'} the 'non-finite state' status")
    node_row = graph.read_results(tmp_path / "node")
    assert node_row["nonfinite_substitutions"] == 0 and node_row["safety_events"] >= 2


def test_ros2_quadrotor_watchdog_hovers_on_killed_odometry(env, tmp_path):
    """Wall clock, 25 Hz: the quadrotor's odometry publisher is SIGKILLed mid-flight: the hover setpoint (zero
    velocity, mavros' setpoint_velocity) must be published within two control periods of the last odometry."""
    period = 0.04
    r = graph.kill_trial(tmp_path, env, "ros2", QUAD_SMALL, robot="quadrotor")
    assert r["node_code"] == 0, r["node_log"][-2000:]
    assert all(len(c) == 5 for c in r["rows"]["cmd"])  # (rx, vx, vy, vz, yaw_rate): the quadrotor's setpoints
    check_kill_trial(r, period, "ROS 2 quadrotor")


# After a participant is SIGKILLed, Fast DDS now and then delivers the surviving node's messages to other
# readers about a second late (seen with UDP and with async publication; the node itself had published
# in time). The two-period limit is asserted where the node publishes; what a listener sees is reported
# and bounded by this allowance.
DDS_LAG_ALLOWANCE_S = 1.5


def check_kill_trial(r: dict, period: float, label: str) -> None:
    cmds, statuses, killed = r["rows"]["cmd"], r["rows"]["status"], r["killed"]
    assert len(cmds) > 10 and all(np.all(np.isfinite(c[1:])) for c in cmds)  # NaN never became a command
    assert r["last_odom"] is not None and r["first_safe"] is not None, (r["last_odom"], r["first_safe"])
    assert r["node_safe"] is not None, "the node logged no 'odometry stale' safe command"
    published = r["node_safe"] - r["last_odom"]
    received = r["first_safe"] - r["last_odom"]
    print(f"{label} watchdog: safe command published {published * 1e3:.0f} ms and received by a listener "
          f"{received * 1e3:.0f} ms after the last odometry ({(r['first_safe'] - killed) * 1e3:.0f} ms after "
          f"SIGKILL); limit {2 * period * 1e3:.0f} ms")
    assert published <= 2 * period, published
    assert received <= 2 * period + DDS_LAG_ALLOWANCE_S, received
    assert any(t > killed and reason == "odometry stale" for t, _, reason in statuses)
    assert not [t for t, *a in cmds if t > r["first_safe"] and any(v != 0.0 for v in a)]  # stays safe


def test_ros2_node_flies_the_simulated_quadrotor_through_waypoints(env, tmp_path):
    sim_row, node_row, _ = graph.drive_course(
        tmp_path, env,
        ["robot=quadrotor", "ros.use_sim_time=true", "ros.sim.real_time_factor=0.5", "ros.sim.max_time_s=40",
         "ros.sim.linger_s=0.5", "task.waypoint_timeout_s=10"],
        # the flight, not the watchdog, is under test here: a loaded 2-core CI machine may stall a process for
        # longer than the 40 ms default odometry timeout, and each stall would hover the quad for a moment
        ["robot=quadrotor", *QUAD_SMALL, "ros.use_sim_time=true", "ros.watchdog.odom_timeout_s=0.2",
         "ros.watchdog.plan_deadline_s=0.2", f"ros.checkpoint.path={tmp_path / 'q.pt'}"],
        timeout=300)
    print(f"ROS 2 quadrotor course: success_rate={sim_row['success_rate']} ({sim_row['waypoints_reached']}/"
          f"{sim_row['waypoints_total']}), crashes={sim_row['crashes']}")
    assert sim_row["crashes"] == 0 and sim_row["nonfinite_commands"] == 0
    assert sim_row["success_rate"] >= 0.75, sim_row
    assert node_row["cycles_ok"] > 50


def test_ros2_node_starts_from_a_trained_model_and_drives_that_robot(env, foreign, tmp_path):
    """robocl-ros model=PATH: the node plans on the model robocl-train fitted to the foreign UGV (bigger
    wheels, payload, low friction), driving robocl-ros-sim with those physics over a real ROS 2 graph."""
    ckpt = tmp_path / "node.pt"
    sim_row, node_row, log = graph.drive_course(
        tmp_path, env,
        ["robot=ugv", "task.map=ugv_short", *FOREIGN, "ros.use_sim_time=true", "ros.sim.real_time_factor=2",
         "ros.sim.max_time_s=40", "ros.sim.linger_s=0.5"],
        ["robot=ugv", f"model={foreign['model']}", "planner.population=200", "runtime.threads=1",
         "ros.use_sim_time=true", f"ros.checkpoint.path={ckpt}"])
    assert sim_row["success_rate"] == 1.0 and sim_row["crashes"] == 0, sim_row
    assert f"loaded ensemble model {foreign['model']}" in " ".join(log.split())
    import json

    assert json.loads((tmp_path / "node" / "results.json").read_text())["model"] == str(foreign["model"])
    assert node_row["learned_transitions"] > 10  # it keeps learning on board from there, checkpointed
    assert ckpt.exists()


QUAD_FOREIGN = ["task.physics.payload_frac=0.4", "task.physics.motor_efficiency=[0.8,1,1,1]"]


@pytest.mark.slow
def test_ros2_node_flies_a_foreign_quadrotor_from_its_trained_model(env, tmp_path, capsys, monkeypatch):
    """The own-robot path on the quadrotor: flights of a quad with +40% mass and one motor at 80% recorded
    with robocl-run record=, robocl-train on them, then robocl-ros model=PATH flies robocl-ros-sim with
    those physics over the quad_square course on a real ROS 2 graph."""
    from conftest import cli

    from robocl.cli import run, train

    monkeypatch.setenv("ROBOCL_CACHE_DIR", env["ROBOCL_CACHE_DIR"])
    flight = ["experiment=quad_continual", "methods=[mppi]", "task.intervention=[0.0,1.0]", *QUAD_FOREIGN,
              *QUAD_SMALL, f"record={tmp_path / 'rec'}"]
    for task, seeds in (("figure_eight", "[0,1,2,3]"), ("waypoints", "[0]"), ("hover", "[0]")):
        code, _, err = cli(run.main, [*flight, f"task.name={task}", f"seeds={seeds}",
                                      f"hydra.run.dir={tmp_path / task}"], capsys)
        assert code == 0, err
    code, _, err = cli(train.main, ["robot=quadrotor", f"data={tmp_path / 'rec'}", "train.max_epochs=60",
                                    "train.compare_sim=false", f"hydra.run.dir={tmp_path / 'train'}"], capsys)
    assert code == 0, err
    model = tmp_path / "train" / "model.pt"
    sim_row, node_row, log = graph.drive_course(
        tmp_path / "ros", env,
        ["robot=quadrotor", *QUAD_FOREIGN, "ros.use_sim_time=true", "ros.sim.real_time_factor=0.5",
         "ros.sim.max_time_s=40", "ros.sim.linger_s=0.5", "task.waypoint_timeout_s=10"],
        ["robot=quadrotor", f"model={model}", "planner.population=200", "planner.horizon=10", "runtime.threads=1",
         "ros.use_sim_time=true", "ros.watchdog.odom_timeout_s=0.2", "ros.watchdog.plan_deadline_s=0.2",
         f"ros.checkpoint.path={tmp_path / 'q.pt'}"],
        timeout=300)
    print(f"ROS 2 foreign quadrotor from its trained model: success_rate={sim_row['success_rate']} "
          f"({sim_row['waypoints_reached']}/{sim_row['waypoints_total']}), crashes={sim_row['crashes']}, "
          f"learned {node_row['learned_transitions']} transitions on board")
    assert f"loaded ensemble model {model}" in " ".join(log.split())
    assert sim_row["crashes"] == 0 and sim_row["nonfinite_commands"] == 0
    assert sim_row["success_rate"] >= 0.75, sim_row
