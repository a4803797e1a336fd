"""Standard ROS messages <-> robocl state/command vectors (REP-103 conventions).

UGV state `[x, y, yaw, v_forward, v_lateral, yaw_rate]` is a `nav_msgs/Odometry`: pose in the
`odom` frame (yaw as a quaternion about z), twist in the `base_link` child frame. The command
`(v, w)` is a `geometry_msgs/Twist` (or `TwistStamped`): `linear.x`, `angular.z`. Regime labels
are `std_msgs/String`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

ODOMETRY = "nav_msgs/msg/Odometry"
TWIST = "geometry_msgs/msg/Twist"
TWIST_STAMPED = "geometry_msgs/msg/TwistStamped"
STRING = "std_msgs/msg/String"

STATE_TYPES = (ODOMETRY,)
COMMAND_TYPES = (TWIST, TWIST_STAMPED)
REGIME_TYPES = (STRING,)

# Planar ground robot layout (robocl.robots.codec.PlanarBodyCodec); index 2 is an angle.
STATE_FIELDS = ("x", "y", "yaw", "v_forward", "v_lateral", "yaw_rate")
COMMAND_FIELDS = ("v_cmd", "w_cmd")
ANGLE_DIMS = (2,)


def yaw_to_quaternion(yaw: float) -> tuple[float, float, float, float]:
    """(x, y, z, w) of a rotation by `yaw` about z."""
    return 0.0, 0.0, math.sin(yaw / 2.0), math.cos(yaw / 2.0)


def quaternion_to_yaw(x: float, y: float, z: float, w: float) -> float:
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def split_ns(t_ns: int) -> tuple[int, int]:
    return int(t_ns // 1_000_000_000), int(t_ns % 1_000_000_000)


class MessageFactory:
    """Builds the recorded message types for one typestore (ROS 2 Humble or ROS 1 Noetic)."""

    def __init__(self, typestore: Any) -> None:
        self.ts = typestore
        t = typestore.types
        self._time = t["builtin_interfaces/msg/Time"]
        self._header = t["std_msgs/msg/Header"]
        self._ros1 = "seq" in self._header.__dataclass_fields__
        self._odom = t[ODOMETRY]
        self._pose_cov = t["geometry_msgs/msg/PoseWithCovariance"]
        self._twist_cov = t["geometry_msgs/msg/TwistWithCovariance"]
        self._pose = t["geometry_msgs/msg/Pose"]
        self._point = t["geometry_msgs/msg/Point"]
        self._quat = t["geometry_msgs/msg/Quaternion"]
        self._vec = t["geometry_msgs/msg/Vector3"]
        self._twist = t[TWIST]
        self._twist_stamped = t[TWIST_STAMPED]
        self._string = t[STRING]
        self._zeros = np.zeros(36, dtype=np.float64)
        self._seq = 0

    def header(self, t_ns: int, frame: str) -> Any:
        sec, nsec = split_ns(t_ns)
        stamp = self._time(sec=sec, nanosec=nsec)
        if self._ros1:
            self._seq += 1
            return self._header(seq=self._seq, stamp=stamp, frame_id=frame)
        return self._header(stamp=stamp, frame_id=frame)

    def odometry(self, t_ns: int, state: np.ndarray, frame: str = "odom", child: str = "base_link") -> Any:
        x, y, yaw, vf, vl, wz = (float(v) for v in state[:6])
        qx, qy, qz, qw = yaw_to_quaternion(yaw)
        pose = self._pose(position=self._point(x=x, y=y, z=0.0), orientation=self._quat(x=qx, y=qy, z=qz, w=qw))
        twist = self._twist(linear=self._vec(x=vf, y=vl, z=0.0), angular=self._vec(x=0.0, y=0.0, z=wz))
        return self._odom(header=self.header(t_ns, frame), child_frame_id=child,
                          pose=self._pose_cov(pose=pose, covariance=self._zeros),
                          twist=self._twist_cov(twist=twist, covariance=self._zeros))

    def twist(self, command: np.ndarray) -> Any:
        return self._twist(linear=self._vec(x=float(command[0]), y=0.0, z=0.0),
                           angular=self._vec(x=0.0, y=0.0, z=float(command[1])))

    def twist_stamped(self, t_ns: int, command: np.ndarray, frame: str = "base_link") -> Any:
        return self._twist_stamped(header=self.header(t_ns, frame), twist=self.twist(command))

    def string(self, text: str) -> Any:
        return self._string(data=str(text))


def header_ns(msg: Any) -> int | None:
    header = getattr(msg, "header", None)
    if header is None:
        return None
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def odometry_to_state(msg: Any) -> np.ndarray:
    p, q, tw = msg.pose.pose.position, msg.pose.pose.orientation, msg.twist.twist
    return np.array([p.x, p.y, quaternion_to_yaw(q.x, q.y, q.z, q.w), tw.linear.x, tw.linear.y, tw.angular.z],
                    dtype=np.float64)


def twist_to_command(msg: Any) -> np.ndarray:
    tw = getattr(msg, "twist", msg)  # TwistStamped wraps a Twist
    return np.array([tw.linear.x, tw.angular.z], dtype=np.float64)
