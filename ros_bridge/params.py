"""The node's ROS parameters: name, type, range and the config key that gives the default.

The Hydra config (`ros.*`) gives every default; ROS parameters (launch files, `--ros-args -p`,
rospy private params `~name`) override them. ROS 2 declares them typed with ranges (rclpy rejects
out-of-range values); the ROS 1 adapter checks the same ranges itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from robocl.errors import UsageError


@dataclass(frozen=True)
class Param:
    name: str
    kind: type  # float | int | bool | str
    key: str  # config key of the default
    description: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()


NODE_PARAMS = (
    Param("rate_hz", float, "ros.rate_hz", "control loop rate (Hz) on the node clock", 0.5, 500.0),
    Param("odom_timeout_s", float, "ros.watchdog.odom_timeout_s",
          "odometry older than this (steady clock) -> safe command", 0.005, 10.0),
    Param("plan_deadline_s", float, "ros.watchdog.plan_deadline_s",
          "a plan running longer is abandoned -> safe command", 0.001, 10.0),
    Param("overrun_limit", int, "ros.watchdog.overrun_limit",
          "this many plan deadline overruns within overrun_window plans shrink the planner's population", 1, 1000),
    Param("overrun_window", int, "ros.watchdog.overrun_window", "plans over which overruns are counted", 1, 10000),
    Param("budget_factor", float, "ros.watchdog.budget_factor",
          "population x this on repeated overruns (and / this when restored)", 0.05, 0.95),
    Param("budget_floor", float, "ros.watchdog.budget_floor",
          "the population never drops below this fraction of the configured one (1 = never degrade)", 0.01, 1.0),
    Param("budget_restore_after", int, "ros.watchdog.budget_restore_after",
          "plans well within the deadline before the population grows back one step (0 = never)", 0, 1000000),
    Param("state_limit", float, "ros.watchdog.state_limit", "|state entry| above this is out of range", 1.0, 1e6),
    Param("learn", bool, "ros.learn", "keep learning the dynamics online from executed transitions"),
    Param("checkpoint_every_s", float, "ros.checkpoint.every_s", "seconds between checkpoints", 1.0, 86400.0),
    Param("reach_radius", float, "task.reach_radius", "a waypoint counts as reached within this distance (m)",
          0.01, 100.0),
    Param("odom_topic", str, "ros.topics.odom", "nav_msgs/Odometry in"),
    Param("waypoints_topic", str, "ros.topics.waypoints", "nav_msgs/Path or geometry_msgs/PoseArray in"),
    Param("waypoints_type", str, "ros.topics.waypoints_type", "message type of waypoints_topic", None, None,
          ("path", "pose_array")),
    Param("command_topic", str, "ros.topics.command", "Twist (UGV) / TwistStamped (quadrotor) out"),
    Param("status_topic", str, "ros.topics.status", "std_msgs/String JSON diagnostics out"),
    Param("world_frame", str, "ros.frames.world", "frame_id of stamped commands and of the odometry pose"),
)


def check_value(p: Param, value: Any, where: str) -> Any:
    """The value coerced to the parameter's type, or UsageError naming what is accepted."""
    ok = True
    if p.kind is bool:
        ok = isinstance(value, bool)
    elif p.kind in (int, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))
        if ok and p.kind is int:
            ok = float(value).is_integer()
        if ok and ((p.lo is not None and value < p.lo) or (p.hi is not None and value > p.hi)):
            ok = False
    else:
        ok = isinstance(value, str) and bool(value) and (not p.choices or value in p.choices)
    if not ok:
        accepted = (f"one of {', '.join(p.choices)}" if p.choices else
                    f"a {p.kind.__name__} in [{p.lo:g}, {p.hi:g}]" if p.lo is not None else
                    f"a {'non-empty string' if p.kind is str else p.kind.__name__}")
        raise UsageError(f"{where}={value!r}: must be {accepted}")
    return p.kind(value)


def defaults(cfg: DictConfig) -> dict[str, Any]:
    """Parameter values from the config (already resolved by `robocl_ros.node.resolve`)."""
    return {p.name: check_value(p, OmegaConf.select(cfg, p.key), p.key) for p in NODE_PARAMS}


def apply(cfg: DictConfig, values: dict[str, Any]) -> None:
    """Write parameter values back into the config (so results.json shows what ran)."""
    for p in NODE_PARAMS:
        if p.name in values:
            OmegaConf.update(cfg, p.key, values[p.name], merge=False)
