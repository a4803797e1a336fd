"""`robocl-ros-sim robot=ugv|quadrotor ...`: the MuJoCo robot behind ROS topics (for testing the node)."""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import DictConfig

from robocl.cli.app import run_app
from robocl.cli.ros import split_args, with_experiment


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    hydra, ros = split_args(args)

    def body(cfg: DictConfig, run_dir: Path) -> int:
        from robocl_ros.simnode import run_sim

        return run_sim(cfg, run_dir, ros)

    def validate(cfg: DictConfig) -> None:
        from robocl_ros.simnode import validate as check

        check(cfg)

    sys.exit(run_app("robocl-ros-sim", "A simulated robot behind ROS topics: odometry and the course out, "
                     "commands in (robot=ugv|quadrotor).", body, argv=with_experiment(hydra), validate=validate))


if __name__ == "__main__":
    main()
