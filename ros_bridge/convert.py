"""Odometry <-> robot state (REP-103/105) and the last guard on a command before it is published.

The Odometry <-> state mapping lives in `robocl.robots.odometry`, shared with the bag readers and
recorder (a model trained from a bag sees in the node exactly the state it was trained on); its
names are re-exported here for the ROS 1 and ROS 2 adapters. UGV state: [x, y, yaw, v_fwd, v_lat,
yaw_rate] with velocities in the yaw-aligned planar frame and yaw_rate the world-z rate; quadrotor
state: [x, y, z, vx, vy, vz, roll, pitch, yaw, p, q, r] with world ENU velocity, ZYX Euler angles
and body rates.
"""

from __future__ import annotations

import numpy as np

from robocl.robots.odometry import (
    OdomFields,
    euler_zyx_to_quat,
    matrix_to_euler_zyx,
    quad_odometry,
    quad_state,
    quat_to_matrix,
    ugv_odometry,
    ugv_state,
)

__all__ = ["OdomFields", "euler_zyx_to_quat", "matrix_to_euler_zyx", "quad_odometry", "quad_state",
           "quat_to_matrix", "safe_command", "ugv_odometry", "ugv_state"]


def safe_command(action: np.ndarray, low: np.ndarray, high: np.ndarray, safe: np.ndarray) -> tuple[np.ndarray, bool]:
    """The command to publish: `action` clipped to [low, high], or `safe` if any entry is not finite.

    Returns (command, was_safe_substituted). The last guard before a message leaves the node.
    """
    a = np.asarray(action, dtype=float)
    if a.shape != np.shape(safe) or not np.all(np.isfinite(a)):
        return np.array(safe, dtype=float), True
    return np.clip(a, low, high), False
