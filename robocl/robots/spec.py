"""What a robot is to robocl, from configuration alone: state layout, command, control period, bounds.

A `RobotSpec` is everything a learned model, the readers and the node need to know about a robot;
a simulator (`simulator`, a Gymnasium id) is optional. Specs come from `configs/robot/*.yaml` or a
user's `robot=PATH.yaml`, and a trained model artifact stores the spec it was trained for, so a
model is never run on a robot whose state or command it does not understand.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from robocl.errors import UsageError
from robocl.utils.plain import plain

CODECS = ("planar", "quadrotor", "vector")
# Fixed layouts of the built-in codecs: (state entries, command entries, angle entries by position).
FIXED = {
    "planar": (6, 2, (2,)),
    "quadrotor": (12, 4, (6, 7, 8)),
}
PLANAR_STATE = ("x", "y", "yaw", "v_forward", "v_lateral", "yaw_rate")
PLANAR_COMMAND = ("v_cmd", "w_cmd")
QUAD_STATE = ("x", "y", "z", "vx", "vy", "vz", "roll", "pitch", "yaw", "p", "q", "r")
QUAD_COMMAND = ("vx_cmd", "vy_cmd", "vz_cmd", "yaw_rate_cmd")
DEFAULT_NAMES = {"planar": (PLANAR_STATE, PLANAR_COMMAND), "quadrotor": (QUAD_STATE, QUAD_COMMAND)}


@dataclass(frozen=True)
class RobotSpec:
    """A robot's interface to the learned model (see the module docstring)."""

    name: str
    codec: str
    dt: float
    state: tuple[str, ...]
    command: tuple[str, ...]
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]
    safe_action: tuple[float, ...]
    angles: tuple[str, ...] = ()
    quaternion: tuple[str, ...] | None = None  # (w, x, y, z) entries kept unit-norm (vector codec)
    invariant: tuple[str, ...] = ()  # entries the model does not see as inputs (e.g. position)
    simulator: str | None = None  # Gymnasium id of a simulator of this robot, if there is one
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def state_dim(self) -> int:
        return len(self.state)

    @property
    def action_dim(self) -> int:
        return len(self.command)

    @property
    def angle_dims(self) -> tuple[int, ...]:
        return tuple(self.state.index(a) for a in self.angles)

    def dims(self, names: tuple[str, ...] | None) -> tuple[int, ...]:
        return tuple(self.state.index(n) for n in (names or ()))

    def layout(self) -> dict[str, Any]:
        """What a model depends on: a model trained for one layout cannot run on another."""
        return {"codec": self.codec, "state": list(self.state), "command": list(self.command),
                "angles": list(self.angles), "quaternion": list(self.quaternion) if self.quaternion else None,
                "invariant": list(self.invariant), "dt": self.dt}

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("extra")
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    def mismatch(self, other: dict[str, Any], period: float | None = None) -> str | None:
        """Why a model trained for the spec `other` (a `to_dict()`) cannot run on this robot, or None.

        `period`: the control period the model is used at (default: this robot's dt)."""
        mine = self.layout()
        if period is not None:
            mine["dt"] = period
        for key in ("codec", "state", "command", "angles", "quaternion", "invariant"):
            theirs = other.get(key)
            if key in ("angles", "invariant"):
                theirs = theirs or []
            if theirs != mine[key]:
                return f"{key} {theirs} (this robot: {mine[key]})"
        if not math.isclose(float(other.get("dt", float("nan"))), float(mine["dt"]), rel_tol=1e-9, abs_tol=1e-12):
            return f"control period {other.get('dt')} s (this robot: {mine['dt']} s)"
        for key in ("action_low", "action_high"):
            if [float(v) for v in other.get(key, [])] != [float(v) for v in getattr(self, key)]:
                return f"{key} {other.get(key)} (this robot: {list(getattr(self, key))})"
        return None


def _names(node: Any, key: str, where: str) -> tuple[str, ...]:
    value = node.get(key)
    if value is None:
        return ()
    if isinstance(value, str) or not all(isinstance(v, str) and v for v in value):
        raise UsageError(f"{where}.{key}={_show(value)}: expected a list of names")
    return tuple(str(v) for v in value)


def _floats(node: Any, key: str, where: str, n: int) -> tuple[float, ...]:
    value = node.get(key)
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        out = ()
    if len(out) != n or not all(math.isfinite(v) for v in out):
        raise UsageError(f"{where}.{key}={_show(value)}: expected {n} finite numbers (one per command entry)")
    return out


def _show(value: Any) -> str:
    """A value as the message shows it: a config node (a mapping or list that is not a builtin one) as plain
    dicts and lists, anything else by its repr."""
    try:
        config_node = isinstance(value, (Mapping, Sequence)) and not isinstance(value, (str, bytes, dict, list, tuple))
        return str(plain(value)) if config_node else repr(value)
    except Exception:
        return repr(value)


def spec_from_config(node: Any, where: str = "robot") -> RobotSpec:
    """A checked RobotSpec from a `robot` config node (one UsageError line for each bad key)."""
    codec = str(node.get("codec") or "")
    if codec not in CODECS:
        raise UsageError(f"{where}.codec={codec or None}: accepted {', '.join(CODECS)}")
    name = str(node.get("name") or "")
    if not name:
        raise UsageError(f"{where}.name: missing; give the robot a name")
    default_state, default_command = DEFAULT_NAMES.get(codec, ((), ()))
    state = _names(node, "state", where) or default_state
    command = _names(node, "command", where) or default_command
    if not state or not command:
        raise UsageError(f"{where}: codec vector needs {where}.state and {where}.command (lists of entry names)")
    for key, names in (("state", state), ("command", command)):
        if len(set(names)) != len(names):
            raise UsageError(f"{where}.{key}={list(names)}: a name is listed twice")
    if codec in FIXED:
        n_state, n_command, angle_pos = FIXED[codec]
        if len(state) != n_state or len(command) != n_command:
            raise UsageError(f"{where}: codec {codec} takes {n_state} state and {n_command} command entries "
                             f"(got {len(state)} and {len(command)}); use codec vector for another layout")
        angles = tuple(state[i] for i in angle_pos)
        quaternion, invariant = None, ()
    else:
        angles = _names(node, "angles", where)
        quat = _names(node, "quaternion", where)
        invariant = _names(node, "invariant", where)
        for key, names in (("angles", angles), ("quaternion", quat), ("invariant", invariant)):
            unknown = [n for n in names if n not in state]
            if unknown:
                raise UsageError(f"{where}.{key}: {', '.join(unknown)} not in {where}.state ({', '.join(state)})")
        if quat and len(quat) != 4:
            raise UsageError(f"{where}.quaternion={list(quat)}: expected 4 state entries (w, x, y, z)")
        if set(quat) & set(angles):
            raise UsageError(f"{where}: an entry cannot be both an angle and a quaternion component")
        quaternion = quat or None
    dt = node.get("dt")
    if dt is None and node.get("control_hz") is not None:
        dt = 1.0 / float(node.get("control_hz"))
    try:
        dt = float(dt)
    except (TypeError, ValueError):
        dt = float("nan")
    if not (math.isfinite(dt) and dt > 0):
        raise UsageError(f"{where}.dt={_show(node.get('dt'))}: expected the control period in seconds (> 0)")
    low = _floats(node, "action_low", where, len(command))
    high = _floats(node, "action_high", where, len(command))
    if any(lo >= hi for lo, hi in zip(low, high)):
        raise UsageError(f"{where}.action_low={list(low)} must be below {where}.action_high={list(high)}, "
                         "entry by entry")
    safe = _floats(node, "safe_action", where, len(command))
    if any(not lo <= s <= hi for s, lo, hi in zip(safe, low, high)):
        raise UsageError(f"{where}.safe_action={list(safe)}: outside the action bounds [{list(low)}, {list(high)}]")
    simulator = node.get("env_id")
    return RobotSpec(name=name, codec=codec, dt=dt, state=state, command=command, action_low=low, action_high=high,
                     safe_action=safe, angles=angles, quaternion=quaternion, invariant=invariant,
                     simulator=str(simulator) if simulator else None)


def require_simulator(node: Any, what: str) -> None:
    """One line for a simulation-only command on a robot described without a simulator."""
    if not node.get("env_id"):
        raise UsageError(f"robot={node.get('name')}: this robot has no simulator (robot.env_id is empty), so {what} "
                         "cannot run on it; robocl-train, robocl-eval and robocl-ros work with robot files alone")


def nominal_env(robot: Any) -> tuple[dict[str, Any], Any]:
    """(env kwargs, exploration shaping) of a robot's nominal simulator, as every runner builds it,
    so they share one cached pretrained model (the kwargs are part of its cache key)."""
    if str(robot.name) == "quadrotor":
        from robocl.robots.quadrotor import hold_altitude

        return {"control_hz": float(robot.control_hz)}, hold_altitude()
    return {"dt": float(robot.dt)}, None
