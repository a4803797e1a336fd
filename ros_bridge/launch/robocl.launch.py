"""ROS 2 launch file for the robocl onboard node.

    ros2 launch robocl.launch.py robot:=ugv                   (path to this file; no ament package needed)
    ros2 launch robocl.launch.py robot:=quadrotor odom_topic:=/fmu/out/odom use_sim_time:=true

Runs `robocl-ros` (the robocl environment's console script, on PATH) with each non-empty argument as a
typed ROS parameter (`--ros-args -p name:=value`); the node declares them with types and ranges and
exits 2 with one line on a bad value. Empty arguments keep the node's config default, which depends
on the robot (rate 1/robot.dt, command topic, ...). `overrides` passes Hydra overrides.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction
from launch.substitutions import LaunchConfiguration

# name -> (default, ROS parameter type) ; "" = the node's config default
PARAMS = {
    "rate_hz": ("", float),
    "odom_timeout_s": ("", float),
    "plan_deadline_s": ("", float),
    "overrun_limit": ("", int),
    "overrun_window": ("", int),
    "budget_factor": ("", float),
    "budget_floor": ("", float),
    "budget_restore_after": ("", int),
    "state_limit": ("", float),
    "learn": ("", bool),
    "checkpoint_every_s": ("", float),
    "reach_radius": ("", float),
    "odom_topic": ("", str),
    "waypoints_topic": ("", str),
    "waypoints_type": ("", str),
    "command_topic": ("", str),
    "status_topic": ("", str),
    "world_frame": ("", str),
}


def _node(context):
    get = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    cmd = ["robocl-ros", f"robot={get('robot')}", "ros.transport=ros2", f"ros.node_name={get('node_name')}",
           *get("overrides").split(), "--ros-args", "-p", f"use_sim_time:={get('use_sim_time')}"]
    for name, (_, kind) in PARAMS.items():
        value = get(name)
        if value != "":
            if kind is float and "." not in value and "e" not in value.lower():
                value += ".0"  # a typed double, not an integer
            cmd += ["-p", f"{name}:={value}"]
    return [ExecuteProcess(cmd=cmd, output="screen", sigterm_timeout="20")]


def generate_launch_description() -> LaunchDescription:
    args = [
        DeclareLaunchArgument("robot", default_value="ugv", description="ugv | quadrotor"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="follow /clock"),
        DeclareLaunchArgument("node_name", default_value="robocl_node"),
        DeclareLaunchArgument("overrides", default_value="", description="Hydra overrides, space separated"),
    ]
    args += [DeclareLaunchArgument(name, default_value=default, description=f"node parameter {name} ({kind.__name__})")
             for name, (default, kind) in PARAMS.items()]
    return LaunchDescription([*args, OpaqueFunction(function=_node)])
