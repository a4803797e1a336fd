"""Standard ROS messages <-> robocl state/command vectors (REP-103 conventions), per state layout.

State: a `nav_msgs/Odometry` (pose in the world frame `odom`, twist in the child frame), mapped by
`robocl.robots.odometry`, the same functions the ROS node uses:
- `planar` (UGV): `ugv_state` -> [x, y, yaw, v_forward, v_lateral, yaw_rate] (yaw-aligned velocity);
- `quadrotor`: `quad_state` -> [x, y, z, vx, vy, vz, roll, pitch, yaw, p, q, r] (world ENU velocity,
  ZYX Euler angles, body rates).
Command: a `geometry_msgs/Twist` (or `TwistStamped`): planar (v, w) = (`linear.x`, `angular.z`);
quadrotor (`linear.x`, `linear.y`, `linear.z`, `angular.z`), world-frame velocity setpoints (mavros
`setpoint_velocity`). Regime labels are `std_msgs/String`. A `vector` robot has no ROS mapping: it
is read from CSV.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from operator import itemgetter
from typing import Any

import numpy as np

from robocl.robots import odometry
from robocl.robots.odometry import OdomFields
from robocl.robots.spec import DEFAULT_NAMES, FIXED

ODOMETRY = "nav_msgs/msg/Odometry"
TWIST = "geometry_msgs/msg/Twist"
TWIST_STAMPED = "geometry_msgs/msg/TwistStamped"
STRING = "std_msgs/msg/String"

STATE_TYPES = (ODOMETRY,)
COMMAND_TYPES = (TWIST, TWIST_STAMPED)
REGIME_TYPES = (STRING,)

LAYOUTS = ("planar", "quadrotor", "vector")
BAG_LAYOUTS = ("planar", "quadrotor")  # the layouts with a ROS message mapping

# Planar ground robot layout (robocl.robots.codec.PlanarBodyCodec), the default; index 2 is an angle.
STATE_FIELDS, COMMAND_FIELDS = DEFAULT_NAMES["planar"]
ANGLE_DIMS = FIXED["planar"][2]

STATE_FROM_ODOMETRY: dict[str, Callable[[OdomFields], np.ndarray]] = {
    "planar": odometry.ugv_state, "quadrotor": odometry.quad_state}
# the same functions on the 13 numbers of an Odometry (ugv_state(f) is ugv_state_from(*f's numbers)): the wire
# decoders pass the unpacked payload straight in, without building an OdomFields per message
STATE_FROM_NUMBERS: dict[str, Callable[..., np.ndarray]] = {
    "planar": odometry.ugv_state_from, "quadrotor": odometry.quad_state_from}
ODOMETRY_FROM_STATE: dict[str, Callable[..., OdomFields]] = {
    "planar": odometry.ugv_odometry, "quadrotor": odometry.quad_odometry}
# command entries as positions in a twist's (linear.x, .y, .z, angular.x, .y, .z)
_COMMAND_SLOTS = {"planar": (0, 5), "quadrotor": (0, 1, 2, 5)}
_COMMAND_PICK = {k: itemgetter(*v) for k, v in _COMMAND_SLOTS.items()}


def angle_dims(layout: str) -> tuple[int, ...]:
    """State entries that are angles (interpolated on the circle) of a built-in layout."""
    return FIXED[layout][2] if layout in FIXED else ()


def _bag_layout(layout: str) -> str:
    if layout not in BAG_LAYOUTS:
        raise ValueError(f"layout {layout!r} has no ROS message mapping (accepted: {', '.join(BAG_LAYOUTS)})")
    return layout


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

    def odometry(self, t_ns: int, state: np.ndarray, frame: str = "odom", child: str = "base_link",
                 layout: str = "planar") -> Any:
        """The Odometry a robot of `layout` publishes for `state` (the node's mapping, inverted)."""
        return self.odometry_from_fields(t_ns, ODOMETRY_FROM_STATE[_bag_layout(layout)](state), frame, child)

    def odometry_from_fields(self, t_ns: int, f: OdomFields, frame: str = "odom", child: str = "base_link") -> Any:
        """An Odometry holding exactly the 13 numbers of `f`."""
        x, y, z = (float(v) for v in f.position)
        qx, qy, qz, qw = (float(v) for v in f.quaternion)
        pose = self._pose(position=self._point(x=x, y=y, z=z), orientation=self._quat(x=qx, y=qy, z=qz, w=qw))
        twist = self._twist(linear=self._vector(f.linear), angular=self._vector(f.angular))
        return self._odom(header=self.header(t_ns, frame), child_frame_id=child,
                          pose=self._pose_cov(pose=pose, covariance=self._zeros),
                          twist=self._twist_cov(twist=twist, covariance=self._zeros))

    def _vector(self, v) -> Any:
        x, y, z = (float(c) for c in v)
        return self._vec(x=x, y=y, z=z)

    def twist(self, command: np.ndarray, layout: str = "planar") -> Any:
        six = [0.0] * 6
        for slot, value in zip(_COMMAND_SLOTS[_bag_layout(layout)], command, strict=True):
            six[slot] = float(value)
        return self._twist(linear=self._vector(six[:3]), angular=self._vector(six[3:]))

    def twist_stamped(self, t_ns: int, command: np.ndarray, frame: str = "base_link", layout: str = "planar") -> Any:
        return self._twist_stamped(header=self.header(t_ns, frame), twist=self.twist(command, layout))

    def string(self, text: str) -> Any:
        return self._string(data=str(text))


def header_ns(msg: Any) -> int | None:
    header = getattr(msg, "header", None)
    if header is None:
        return None
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def odometry_to_fields(msg: Any) -> OdomFields:
    """All 13 numbers of a (deserialized) nav_msgs/Odometry."""
    p, q, tw = msg.pose.pose.position, msg.pose.pose.orientation, msg.twist.twist
    lin, ang = tw.linear, tw.angular
    return OdomFields((p.x, p.y, p.z), (q.x, q.y, q.z, q.w), (lin.x, lin.y, lin.z), (ang.x, ang.y, ang.z))


def odometry_to_state(msg: Any, layout: str = "planar") -> np.ndarray:
    return STATE_FROM_ODOMETRY[_bag_layout(layout)](odometry_to_fields(msg))


def twist_to_command(msg: Any, layout: str = "planar") -> np.ndarray:
    tw = getattr(msg, "twist", msg)  # TwistStamped wraps a Twist
    lin, ang = tw.linear, tw.angular
    return np.array(_COMMAND_PICK[_bag_layout(layout)]((lin.x, lin.y, lin.z, ang.x, ang.y, ang.z)), dtype=np.float64)


# ---- fast paths: the three message types the evaluator reads, straight from the wire format -------
# rosbags' generic deserializer builds every nested message object (both 36-double covariances
# included); evaluating a long log only needs a few doubles. Decoders return (header stamp ns or
# None, vector) and raise on anything unexpected, so the caller falls back to the generic path. The
# vector comes from the same functions as the generic path's (odometry_to_state, twist_to_command).
_I32 = struct.Struct("<iI")
_U32 = struct.Struct("<I")
_D6 = struct.Struct("<6d")
# the 13 numbers of an Odometry: pose position + orientation, (36-double pose covariance skipped), twist
_ODOMETRY_NUMBERS = struct.Struct(f"<7d{36 * 8}x6d")


def _cdr_string_end(raw: bytes, pos: int) -> int:
    pos = (pos + 3) & ~3
    (n,) = _U32.unpack_from(raw, 4 + pos)
    return pos + 4 + n


def _cdr_header_end(raw: bytes) -> tuple[int, int]:
    sec, nsec = _I32.unpack_from(raw, 4)
    return sec * 1_000_000_000 + nsec, _cdr_string_end(raw, 8)


def _cdr_align8(pos: int) -> int:
    return (pos + 7) & ~7


def _odometry_decoder(ros1: bool, state: Callable[..., np.ndarray]):
    """Pose (7 doubles), pose covariance (skipped), twist (6 doubles) after the header and child frame:
    the 13 numbers of OdomFields, in its order."""
    unpack = _ODOMETRY_NUMBERS.unpack_from
    if ros1:
        def decode(raw: bytes) -> tuple[int | None, np.ndarray]:
            stamp, pos = _ros1_header_end(raw)
            (n,) = _U32.unpack_from(raw, pos)
            v = unpack(raw, pos + 4 + n)
            return stamp, state(*v)
    else:
        def decode(raw: bytes) -> tuple[int | None, np.ndarray]:
            stamp, pos = _cdr_header_end(raw)
            v = unpack(raw, 4 + _cdr_align8(_cdr_string_end(raw, pos)))  # after child_frame_id
            return stamp, state(*v)
    return decode


def _twist_decoder(ros1: bool, stamped: bool, pick: Callable[[tuple], tuple]):
    """The 6 doubles of a Twist (after the header of a TwistStamped), the layout's command entries picked."""
    unpack = _D6.unpack_from
    if not stamped:
        offset = 0 if ros1 else 4

        def decode(raw: bytes) -> tuple[int | None, np.ndarray]:
            return None, np.array(pick(unpack(raw, offset)), dtype=np.float64)
    elif ros1:
        def decode(raw: bytes) -> tuple[int | None, np.ndarray]:
            stamp, pos = _ros1_header_end(raw)
            return stamp, np.array(pick(unpack(raw, pos)), dtype=np.float64)
    else:
        def decode(raw: bytes) -> tuple[int | None, np.ndarray]:
            stamp, pos = _cdr_header_end(raw)
            return stamp, np.array(pick(unpack(raw, 4 + _cdr_align8(pos))), dtype=np.float64)
    return decode


def _ros1_header_end(raw: bytes) -> tuple[int, int]:
    sec, nsec = _I32.unpack_from(raw, 4)
    (n,) = _U32.unpack_from(raw, 12)
    return sec * 1_000_000_000 + nsec, 16 + n


_MIN_SIZE = {
    (False, ODOMETRY): 4 + 8 + 4 + 4 + (7 + 36 + 6 + 36) * 8,
    (False, TWIST_STAMPED): 4 + 8 + 4 + 48,
    (False, TWIST): 4 + 48,
    (True, ODOMETRY): 12 + 4 + 4 + (7 + 36 + 6 + 36) * 8,
    (True, TWIST_STAMPED): 12 + 4 + 48,
    (True, TWIST): 48,
}


def fast_decoder(msgtype: str, ros1: bool, msgdef_ok: bool = True, layout: str = "planar"):
    """`decode(raw) -> (stamp_ns | None, vector)` for a known type, or None (use the generic path).

    CDR payloads must be little endian (encapsulation 0x0001); big-endian ones take the generic path.
    """
    min_size = _MIN_SIZE.get((ros1, msgtype)) if msgdef_ok else None
    if min_size is None:
        return None
    layout = _bag_layout(layout)
    if msgtype == ODOMETRY:
        fn = _odometry_decoder(ros1, STATE_FROM_NUMBERS[layout])
    else:
        fn = _twist_decoder(ros1, msgtype == TWIST_STAMPED, _COMMAND_PICK[layout])

    def decode(raw: bytes) -> tuple[int | None, np.ndarray]:
        if len(raw) < min_size or (not ros1 and raw[1] != 1):
            raise ValueError("unexpected payload")
        return fn(raw)

    return decode
