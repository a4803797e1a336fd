"""Message <-> array helpers shared by the ROS 1 and ROS 2 adapters (their messages share field names).

Only header stamps differ (ROS 2 `sec`/`nanosec`, ROS 1 `secs`/`nsecs`): `stamp_seconds` reads both; callers build
stamps with their own client library.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from robocl_ros.convert import OdomFields


def stamp_seconds(stamp: Any) -> float:
    sec = getattr(stamp, "sec", None)
    if sec is None:
        return float(stamp.secs) + float(stamp.nsecs) * 1e-9
    return float(sec) + float(stamp.nanosec) * 1e-9


def odom_fields(msg: Any) -> OdomFields:
    p, q = msg.pose.pose.position, msg.pose.pose.orientation
    lin, ang = msg.twist.twist.linear, msg.twist.twist.angular
    return OdomFields(np.array([p.x, p.y, p.z], float), np.array([q.x, q.y, q.z, q.w], float),
                      np.array([lin.x, lin.y, lin.z], float), np.array([ang.x, ang.y, ang.z], float))


def fill_odometry(msg: Any, f: OdomFields, stamp: Any, frame: str, child: str) -> Any:
    msg.header.stamp = stamp
    msg.header.frame_id = frame
    msg.child_frame_id = child
    p, q = msg.pose.pose.position, msg.pose.pose.orientation
    p.x, p.y, p.z = (float(v) for v in f.position)
    q.x, q.y, q.z, q.w = (float(v) for v in f.quaternion)
    lin, ang = msg.twist.twist.linear, msg.twist.twist.angular
    lin.x, lin.y, lin.z = (float(v) for v in f.linear)
    ang.x, ang.y, ang.z = (float(v) for v in f.angular)
    return msg


def waypoints_array(msg: Any, dims: int) -> np.ndarray:
    """(N, dims) positions of a nav_msgs/Path (poses[i].pose) or geometry_msgs/PoseArray (poses[i])."""
    rows = []
    for pose in msg.poses:
        p = pose.pose.position if hasattr(pose, "pose") else pose.position
        rows.append((p.x, p.y, p.z)[:dims])
    return np.asarray(rows, float).reshape(-1, dims)


def fill_path(msg: Any, points: np.ndarray, stamp: Any, frame: str, pose_stamped: Callable[[], Any]) -> Any:
    msg.header.stamp = stamp
    msg.header.frame_id = frame
    poses = []
    for row in np.asarray(points, float):
        ps = pose_stamped()
        ps.header.stamp = stamp
        ps.header.frame_id = frame
        ps.pose.position.x, ps.pose.position.y = float(row[0]), float(row[1])
        ps.pose.position.z = float(row[2]) if len(row) > 2 else 0.0
        ps.pose.orientation.w = 1.0
        poses.append(ps)
    msg.poses = poses
    return msg


def fill_twist(twist: Any, linear: tuple[float, float, float], angular: tuple[float, float, float]) -> Any:
    twist.linear.x, twist.linear.y, twist.linear.z = linear
    twist.angular.x, twist.angular.y, twist.angular.z = angular
    return twist


def twist_values(msg: Any) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    t = msg.twist if hasattr(msg, "twist") else msg
    return (t.linear.x, t.linear.y, t.linear.z), (t.angular.x, t.angular.y, t.angular.z)
