"""Odometry <-> robot state, following REP-103 (SI units, ENU, x forward) and REP-105 (Odometry pose
in the world frame `header.frame_id`, twist in the body frame `child_frame_id`).

The one mapping that the ROS node (`robocl_ros.convert` re-exports these names), the bag readers
(`robocl.offline.rosmsg`) and the bag recorder use, so a model trained from a bag sees in the node
exactly the state it was trained on. Works on plain numbers (no ROS types): UGV state [x, y, yaw,
v_fwd, v_lat, yaw_rate] with velocities in the yaw-aligned planar frame and yaw_rate the world-z
rate; quadrotor state [x, y, z, vx, vy, vz, roll, pitch, yaw, p, q, r] with world ENU velocity, ZYX
Euler angles and body rates.

The state functions compute in closed form on Python floats (no 3x3 arrays): the readers call them
once per message of a long log, the wire decoders through `ugv_state_from` / `quad_state_from` (the
same functions on the 13 numbers, what `ugv_state` / `quad_state` themselves call).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Vector = np.ndarray | Sequence[float]
_NAN9 = (math.nan,) * 9


@dataclass(slots=True)
class OdomFields:
    """The numbers of a nav_msgs/Odometry: position, orientation (x, y, z, w), body twist.

    Arrays in the node, tuples of floats from the bag readers' generic path."""

    position: Vector  # (3,) m, world frame
    quaternion: Vector  # (4,) x, y, z, w
    linear: Vector  # (3,) m/s, body (child) frame
    angular: Vector  # (3,) rad/s, body (child) frame


def _rotation(qx: float, qy: float, qz: float, qw: float) -> tuple[float, ...]:
    """Row-major entries of the body -> world rotation of a quaternion, normalised; all NaN for a
    non-finite or zero quaternion, so a broken message stays visibly broken."""
    n2 = qx * qx + qy * qy + qz * qz + qw * qw
    if 1e-150 < n2 < 1e150:  # any usable quaternion (NaN fails the test): 2/|q|^2 without a sqrt
        k = 2.0 / n2
        xs, ys, zs = qx * k, qy * k, qz * k
        wx, wy, wz = qw * xs, qw * ys, qw * zs
        xx, xy, xz = qx * xs, qx * ys, qx * zs
        yy, yz, zz = qy * ys, qy * zs, qz * zs
        return (1.0 - (yy + zz), xy - wz, xz + wy,
                xy + wz, 1.0 - (xx + zz), yz - wx,
                xz - wy, yz + wx, 1.0 - (xx + yy))
    if not (math.isfinite(qx) and math.isfinite(qy) and math.isfinite(qz) and math.isfinite(qw)):
        return _NAN9
    n = math.sqrt(n2) if math.isfinite(n2) else math.inf  # tiny or huge: normalise first
    if not n > 0.0:
        return _NAN9
    x, y, z, w = qx / n, qy / n, qz / n, qw / n
    return (1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
            2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
            2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y))


def quat_to_matrix(q: Vector) -> np.ndarray:
    """Rotation matrix (body -> world) of a quaternion (x, y, z, w); normalised first.

    A non-finite or zero quaternion gives a NaN matrix, so a broken message stays visibly broken.
    """
    x, y, z, w = (float(v) for v in q)
    return np.array(_rotation(x, y, z, w)).reshape(3, 3)


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


def _euler(r20: float, r21: float, r22: float, r10: float, r00: float) -> tuple[float, float, float]:
    pitch = -math.asin(max(-1.0, min(1.0, r20))) if math.isfinite(r20) else math.nan
    return math.atan2(r21, r22), pitch, math.atan2(r10, r00)


def matrix_to_euler_zyx(r: np.ndarray) -> tuple[float, float, float]:
    """(roll, pitch, yaw) of a rotation matrix, ZYX convention."""
    return _euler(float(r[2, 0]), float(r[2, 1]), float(r[2, 2]), float(r[1, 0]), float(r[0, 0]))


def _floats(v: Vector) -> Sequence[float]:
    """Python floats (arithmetic on them is exact IEEE double, whatever array dtype came in)."""
    return v if type(v) is tuple else [float(c) for c in v]  # the readers' tuples hold floats already


def _numbers(odom: OdomFields) -> tuple[float, ...]:
    return (*_floats(odom.position), *_floats(odom.quaternion), *_floats(odom.linear), *_floats(odom.angular))


def ugv_state(odom: OdomFields) -> np.ndarray:
    """UGV state from odometry: body twist rotated to world, then into the yaw-aligned frame (so a
    tilted base on a slope reports its planar motion, not its body-axis motion)."""
    return ugv_state_from(*_numbers(odom))


def ugv_state_from(px: float, py: float, pz: float, qx: float, qy: float, qz: float, qw: float, vx: float,
                   vy: float, vz: float, wx: float, wy: float, wz: float) -> np.ndarray:
    """`ugv_state` of the 13 numbers of an Odometry (Python floats, in OdomFields order); the bag
    readers' wire decoders call it straight from the unpacked payload."""
    r00, r01, r02, r10, r11, r12, r20, r21, r22 = _rotation(qx, qy, qz, qw)
    yaw = math.atan2(r10, r00)
    v0 = r00 * vx + r01 * vy + r02 * vz  # world velocity, x and y
    v1 = r10 * vx + r11 * vy + r12 * vz
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([px, py, yaw, c * v0 + s * v1, -s * v0 + c * v1, r20 * wx + r21 * wy + r22 * wz])


def ugv_odometry(state: Vector, z: float = 0.0) -> OdomFields:
    """What a planar base driver publishes for a UGV state (roll = pitch = 0)."""
    x, y, yaw, v_fwd, v_lat, yaw_rate = (float(v) for v in state[:6])
    return OdomFields(np.array([x, y, z]), euler_zyx_to_quat(0.0, 0.0, yaw), np.array([v_fwd, v_lat, 0.0]),
                      np.array([0.0, 0.0, yaw_rate]))


def quad_state(odom: OdomFields) -> np.ndarray:
    """Quadrotor state from odometry: world velocity = R @ body velocity; ZYX Euler; body rates as given."""
    return quad_state_from(*_numbers(odom))


def quad_state_from(px: float, py: float, pz: float, qx: float, qy: float, qz: float, qw: float, vx: float,
                    vy: float, vz: float, wx: float, wy: float, wz: float) -> np.ndarray:
    """`quad_state` of the 13 numbers of an Odometry (see ugv_state_from)."""
    r00, r01, r02, r10, r11, r12, r20, r21, r22 = _rotation(qx, qy, qz, qw)
    roll, pitch, yaw = _euler(r20, r21, r22, r10, r00)
    return np.array([px, py, pz, r00 * vx + r01 * vy + r02 * vz, r10 * vx + r11 * vy + r12 * vz,
                     r20 * vx + r21 * vy + r22 * vz, roll, pitch, yaw, wx, wy, wz])


def quad_odometry(state: Vector) -> OdomFields:
    """What a flight stack publishes for a quadrotor state (body velocity = R^T @ world velocity)."""
    roll, pitch, yaw = (float(v) for v in state[6:9])
    q = euler_zyx_to_quat(roll, pitch, yaw)
    body_velocity = quat_to_matrix(q).T @ np.asarray(state[3:6], float)
    return OdomFields(np.asarray(state[:3], float), q, body_velocity, np.asarray(state[9:12], float))
