"""`robocl-ros robot=ugv|quadrotor ...`: the onboard ROS node (see ros_bridge/, import `robocl_ros`).

Hydra overrides (`ros.transport=ros1`, `ros.rate_hz=10`, ...) and ROS arguments mix on one command
line: everything after `--ros-args` goes to rclpy (`-p rate_hz:=10`, `-r odom:=/base/odom`), and
`NAME:=VALUE` words (ROS 1 remaps and `_param:=value`, as roslaunch appends) are left to rospy.
Without ROS installed it exits 2 with one line saying how to install it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import DictConfig

from robocl.cli.app import run_app

EXPERIMENTS = {"ugv": "ros_ugv", "quadrotor": "ros_quad"}


def split_args(args: list[str]) -> tuple[list[str], list[str]]:
    """(Hydra overrides, ROS arguments)."""
    if "--ros-args" in args:
        i = args.index("--ros-args")
        hydra, ros = args[:i], args[i + 1:]
    else:
        hydra, ros = list(args), []
    ros1 = [a for a in hydra if ":=" in a]
    return [a for a in hydra if ":=" not in a], ros + ros1


def with_experiment(overrides: list[str]) -> list[str]:
    """Pick the ROS experiment config for `robot=` unless the user named one."""
    if any(a.split("=", 1)[0].lstrip("+~") == "experiment" for a in overrides):
        return overrides
    robot = next((a.split("=", 1)[1] for a in overrides if a.startswith("robot=")), "ugv")
    return [*overrides, f"experiment={EXPERIMENTS.get(robot, 'ros_ugv')}"]


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    hydra, ros = split_args(args)

    def body(cfg: DictConfig, run_dir: Path) -> int:
        from robocl_ros.node import run_node

        return run_node(cfg, run_dir, ros)

    def validate(cfg: DictConfig) -> None:
        from robocl_ros.node import validate as check

        check(cfg)

    sys.exit(run_app("robocl-ros", "The onboard ROS node: odometry in, command out, learning on board "
                     "(robot=ugv|quadrotor, ros.transport=ros2|ros1).", body, argv=with_experiment(hydra),
                     validate=validate))


if __name__ == "__main__":
    main()
