"""ROS 1 end to end over a real graph: a `roscore` on a free port (started and stopped by process id),
`robocl-ros-sim` and `robocl-ros` with `ros.transport=ros1` as separate rospy processes. Debian's ROS 1
packages are installed with apt-get if missing; with CI=true nothing here may skip."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pytest
from robocl_ros import graph
from test_ros2 import SMALL, check_kill_trial, ros_ready

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    ros_ready("ros1")
    out = tmp_path_factory.mktemp("roscore")
    core = graph.Roscore(out)
    cache = tmp_path_factory.getbasetemp() / "robocl-cache"
    yield {**core.env, "ROBOCL_CACHE_DIR": str(cache), "WANDB_MODE": "offline"}
    core.stop()


def test_ros1_roslaunch_node_drives_the_simulated_ugv_through_a_course(env, tmp_path):
    """The node is started by roslaunch from the shipped launch file, as on a robot."""
    launch = files("robocl_ros").joinpath("launch", "robocl.launch")
    package = str(Path(str(launch)).parent.parent)  # the robocl_ros folder (package.xml, scripts/robocl_ros_node)
    env = {**env, "ROS_PACKAGE_PATH": package, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    overrides = " ".join([*SMALL, f"ros.checkpoint.path={tmp_path / 'node.pt'}", f"hydra.run.dir={tmp_path / 'node'}"])
    sim_row, node_row, log = graph.drive_course(
        tmp_path, env,
        ["robot=ugv", "ros.transport=ros1", "task.map=ugv_short", "ros.use_sim_time=true",
         "ros.sim.real_time_factor=2", "ros.sim.max_time_s=40", "ros.sim.linger_s=0.5"],
        [], node_cmd=["roslaunch", str(launch), "robot:=ugv", "use_sim_time:=true", "rate_hz:=5.0",
                      f"overrides:={overrides}"])
    print(f"ROS 1 UGV course: success_rate={sim_row['success_rate']} ({sim_row['waypoints_reached']}/"
          f"{sim_row['waypoints_total']}), x{sim_row['real_time_factor']:.2f} real time")
    assert sim_row["success_rate"] == 1.0, sim_row
    assert sim_row["crashes"] == 0 and sim_row["nonfinite_commands"] == 0
    assert node_row["learned_transitions"] > 10, node_row
    assert "on ros1" in log and "(sim time)" in log
    assert (tmp_path / "node.pt").exists()


def test_ros1_watchdog_safe_command_on_killed_odometry(env, tmp_path):
    r = graph.kill_trial(tmp_path, env, "ros1", [*SMALL, "ros.use_sim_time=false",
                                                 f"ros.checkpoint.path={tmp_path / 'node.pt'}"], drive_s=1.5)
    assert r["node_code"] == 0, r["node_log"][-2000:]
    check_kill_trial(r, 0.2, "ROS 1")


def test_ros1_launch_file_parses_with_roslaunch(env, tmp_path):
    launch = files("robocl_ros").joinpath("launch", "robocl.launch")
    proc = subprocess.run(["roslaunch", "--dump-params", str(launch), "robot:=ugv", "rate_hz:=5.0",
                           "odom_timeout_s:=0.3", "command_topic:=/base/cmd_vel"], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **env})
    assert proc.returncode == 0, proc.stderr + proc.stdout
    from robocl_ros.params import NODE_PARAMS

    for p in NODE_PARAMS:  # every node parameter can be set from the launch file
        if p.name not in ("plan_deadline_s", "reach_radius"):
            assert f"/robocl_node/{p.name}:" in proc.stdout, (p.name, proc.stdout)
    assert "/robocl_node/command_topic: /base/cmd_vel" in proc.stdout and "/robocl_node/rate_hz: 5.0" in proc.stdout


def test_ros1_node_without_a_roscore_is_one_line_exit_2(env, tmp_path):
    dead = {**env, "ROS_MASTER_URI": f"http://127.0.0.1:{graph.free_port()}"}
    proc = subprocess.run([graph.bin_path("robocl-ros"), "ros.transport=ros1", f"hydra.run.dir={tmp_path}"],
                          capture_output=True, text=True, timeout=120, env={**os.environ, **dead})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "no ROS master" in proc.stderr, proc.stderr
