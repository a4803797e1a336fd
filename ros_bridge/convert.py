"""Odometry <-> robot state and state <-> command, following REP-103 (SI units, ENU, x forward)
and REP-105 (Odometry pose in the world frame `header.frame_id`, twist in the body frame
`child_frame_id`).

Works on plain arrays so the ROS 1 and ROS 2 adapters (whose message classes share field names)
and the tests use the same code. UGV state: [x, y, yaw, v_fwd, v_lat, yaw_rate] with velocities in
the yaw-aligned planar frame and yaw_rate the world-z rate; quadrotor state: [x, y, z, vx, vy, vz,
roll, pitch, yaw, p, q, r] with world ENU velocity, ZYX Euler angles and body rates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class OdomFields:
    """The numbers of a nav_msgs/Odometry: position, orientation (x, y, z, w), body twist."""

    position: np.ndarray  # (3,) m, world frame
    quaternion: np.ndarray  # (4,) x, y, z, w
    linear: np.ndarray  # (3,) m/s, body (child) frame
    angular: np.ndarray  # (3,) rad/s, body (child) frame


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrix (body -> world) of a quaternion (x, y, z, w); normalised first.

    A non-finite or zero quaternion gives a NaN matrix, so a broken message stays visibly broken.
    """
    x, y, z, w = (float(v) for v in q)
    n = math.sqrt(x * x + y * y + z * z + w * w) if all(math.isfinite(v) for v in (x, y, z, w)) else float("nan")
    if not n > 0.0:
        return np.full((3, 3), np.nan)
    x, y, z, w = x / n, y / n, z / n, w / n
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def euler_zyx_to_quat(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """Quaternion (x, y, z, w) of R = Rz(yaw) Ry(pitch) Rx(roll)."""
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return np.array([
        sr * cp * cy - cr * sp * sy,
        cr * sp * cy + sr * cp * sy,
        cr * cp * sy - sr * sp * cy,
        cr * cp * cy + sr * sp * sy,
    ])


def matrix_to_euler_zyx(r: np.ndarray) -> tuple[float, float, float]:
    """(roll, pitch, yaw) of a rotation matrix, ZYX convention."""
    pitch = -math.asin(max(-1.0, min(1.0, float(r[2, 0])))) if np.isfinite(r[2, 0]) else float("nan")
    roll = math.atan2(float(r[2, 1]), float(r[2, 2]))
    yaw = math.atan2(float(r[1, 0]), float(r[0, 0]))
    return roll, pitch, yaw


def ugv_state(odom: OdomFields) -> np.ndarray:
    """UGV state from odometry: body twist rotated to world, then into the yaw-aligned frame."""
    with np.errstate(invalid="ignore", over="ignore"):  # a NaN/inf field stays NaN, visibly
        return _ugv_state(odom)


def _ugv_state(odom: OdomFields) -> np.ndarray:
    r = quat_to_matrix(odom.quaternion)
    yaw = math.atan2(float(r[1, 0]), float(r[0, 0]))
    v_world = r @ np.asarray(odom.linear, float)
    yaw_rate = float((r @ np.asarray(odom.angular, float))[2])
    c, s = math.cos(yaw), math.sin(yaw)
    v_fwd = c * v_world[0] + s * v_world[1]
    v_lat = -s * v_world[0] + c * v_world[1]
    return np.array([odom.position[0], odom.position[1], yaw, v_fwd, v_lat, yaw_rate], dtype=float)


def ugv_odometry(state: np.ndarray, z: float = 0.0) -> OdomFields:
    """What a planar base driver publishes for a UGV state (roll = pitch = 0)."""
    x, y, yaw, v_fwd, v_lat, yaw_rate = (float(v) for v in state[:6])
    return OdomFields(np.array([x, y, z]), euler_zyx_to_quat(0.0, 0.0, yaw), np.array([v_fwd, v_lat, 0.0]),
                      np.array([0.0, 0.0, yaw_rate]))


def quad_state(odom: OdomFields) -> np.ndarray:
    """Quadrotor state from odometry: world velocity = R @ body velocity; body rates as given."""
    with np.errstate(invalid="ignore", over="ignore"):
        return _quad_state(odom)


def _quad_state(odom: OdomFields) -> np.ndarray:
    r = quat_to_matrix(odom.quaternion)
    roll, pitch, yaw = matrix_to_euler_zyx(r)
    v_world = r @ np.asarray(odom.linear, float)
    return np.concatenate([np.asarray(odom.position, float), v_world, [roll, pitch, yaw],
                           np.asarray(odom.angular, float)])


def quad_odometry(state: np.ndarray) -> OdomFields:
    roll, pitch, yaw = (float(v) for v in state[6:9])
    q = euler_zyx_to_quat(roll, pitch, yaw)
    body_velocity = quat_to_matrix(q).T @ np.asarray(state[3:6], float)
    return OdomFields(np.asarray(state[:3], float), q, body_velocity, np.asarray(state[9:12], float))


def safe_command(action: np.ndarray, low: np.ndarray, high: np.ndarray, safe: np.ndarray) -> tuple[np.ndarray, bool]:
    """The command to publish: `action` clipped to [low, high], or `safe` if any entry is not finite.

    Returns (command, was_safe_substituted). The last guard before a message leaves the node.
    """
    a = np.asarray(action, dtype=float)
    if a.shape != np.shape(safe) or not np.all(np.isfinite(a)):
        return np.array(safe, dtype=float), True
    return np.clip(a, low, high), False
