"""Standard ROS messages <-> robocl state/command vectors (REP-103 conventions).

UGV state `[x, y, yaw, v_forward, v_lateral, yaw_rate]` is a `nav_msgs/Odometry`: pose in the
`odom` frame (yaw as a quaternion about z), twist in the `base_link` child frame. The command
`(v, w)` is a `geometry_msgs/Twist` (or `TwistStamped`): `linear.x`, `angular.z`. Regime labels
are `std_msgs/String`.
"""

from __future__ import annotations

import math
import struct
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


# ---- fast paths: the three message types the evaluator reads, straight from the wire format -------
# rosbags' generic deserializer builds every nested message object (both 36-double covariances
# included); evaluating a long log only needs a few doubles. Decoders return (header stamp ns or
# None, vector) and raise on anything unexpected, so the caller falls back to the generic path.
_I32 = struct.Struct("<iI")
_U32 = struct.Struct("<I")
_D3 = struct.Struct("<3d")
_D7 = struct.Struct("<7d")
_D6 = struct.Struct("<6d")
_D8 = 8


def _cdr_string_end(raw: bytes, pos: int) -> int:
    pos = (pos + 3) & ~3
    (n,) = _U32.unpack_from(raw, 4 + pos)
    return pos + 4 + n


def _cdr_header_end(raw: bytes) -> tuple[int, int]:
    sec, nsec = _I32.unpack_from(raw, 4)
    return sec * 1_000_000_000 + nsec, _cdr_string_end(raw, 8)


def _cdr_align8(pos: int) -> int:
    return (pos + 7) & ~7


def _cdr_odometry(raw: bytes) -> tuple[int | None, np.ndarray]:
    stamp, pos = _cdr_header_end(raw)
    pos = _cdr_align8(_cdr_string_end(raw, pos))  # child_frame_id, then doubles
    px, py, _pz, qx, qy, qz, qw = _D7.unpack_from(raw, 4 + pos)
    pos += (7 + 36) * _D8
    vx, vy, _vz, _wx, _wy, wz = _D6.unpack_from(raw, 4 + pos)
    return stamp, np.array([px, py, quaternion_to_yaw(qx, qy, qz, qw), vx, vy, wz])


def _cdr_twist_stamped(raw: bytes) -> tuple[int | None, np.ndarray]:
    stamp, pos = _cdr_header_end(raw)
    vx, _vy, _vz, _wx, _wy, wz = _D6.unpack_from(raw, 4 + _cdr_align8(pos))
    return stamp, np.array([vx, wz])


def _cdr_twist(raw: bytes) -> tuple[int | None, np.ndarray]:
    vx, _vy, _vz, _wx, _wy, wz = _D6.unpack_from(raw, 4)
    return None, np.array([vx, wz])


def _ros1_header_end(raw: bytes) -> tuple[int, int]:
    sec, nsec = _I32.unpack_from(raw, 4)
    (n,) = _U32.unpack_from(raw, 12)
    return sec * 1_000_000_000 + nsec, 16 + n


def _ros1_odometry(raw: bytes) -> tuple[int | None, np.ndarray]:
    stamp, pos = _ros1_header_end(raw)
    (n,) = _U32.unpack_from(raw, pos)
    pos += 4 + n
    px, py, _pz, qx, qy, qz, qw = _D7.unpack_from(raw, pos)
    pos += (7 + 36) * _D8
    vx, vy, _vz, _wx, _wy, wz = _D6.unpack_from(raw, pos)
    return stamp, np.array([px, py, quaternion_to_yaw(qx, qy, qz, qw), vx, vy, wz])


def _ros1_twist_stamped(raw: bytes) -> tuple[int | None, np.ndarray]:
    stamp, pos = _ros1_header_end(raw)
    vx, _vy, _vz, _wx, _wy, wz = _D6.unpack_from(raw, pos)
    return stamp, np.array([vx, wz])


def _ros1_twist(raw: bytes) -> tuple[int | None, np.ndarray]:
    vx, _vy, _vz, _wx, _wy, wz = _D6.unpack_from(raw, 0)
    return None, np.array([vx, wz])


_FAST = {
    (False, ODOMETRY): (_cdr_odometry, 4 + 8 + 4 + 4 + (7 + 36 + 6 + 36) * 8),
    (False, TWIST_STAMPED): (_cdr_twist_stamped, 4 + 8 + 4 + 48),
    (False, TWIST): (_cdr_twist, 4 + 48),
    (True, ODOMETRY): (_ros1_odometry, 12 + 4 + 4 + (7 + 36 + 6 + 36) * 8),
    (True, TWIST_STAMPED): (_ros1_twist_stamped, 12 + 4 + 48),
    (True, TWIST): (_ros1_twist, 48),
}


def fast_decoder(msgtype: str, ros1: bool, msgdef_ok: bool = True):
    """`decode(raw) -> (stamp_ns | None, vector)` for a known type, or None (use the generic path).

    CDR payloads must be little endian (encapsulation 0x0001); big-endian ones take the generic path.
    """
    entry = _FAST.get((ros1, msgtype)) if msgdef_ok else None
    if entry is None:
        return None
    fn, min_size = entry

    def decode(raw: bytes) -> tuple[int | None, np.ndarray]:
        if len(raw) < min_size or (not ros1 and raw[1] != 1):
            raise ValueError("unexpected payload")
        return fn(raw)

    return decode
