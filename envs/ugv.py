"""Differential-drive UGV in MuJoCo, with the AFM actuation-intervention protocol.

The agent commands a unicycle action (v m/s, w rad/s) at 5 Hz, as in the AFM UGV protocol. A
low-level controller that believes the *nominal* wheel radius and track turns it into wheel-speed
set-points for two MuJoCo velocity actuators, which close the wheel-speed loop at the 500 Hz physics
rate. Everything that makes the real robot differ from the unicycle (payload, slippery floor, worn
or mismatched wheels, a weak motor, the AFM gain intervention) is a `UGVParams` field that
`UGVEnv.set_params` applies to the compiled model in place, so a regime can change mid-episode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from gymnasium import spaces

from .mujoco_base import MujocoRobotEnv, mujoco

Pair = tuple[float, float]

MAX_V = 1.0  # m/s, action bound (AFM protocol)
MAX_W = math.pi / 2  # rad/s, action bound (AFM protocol)
FLIP_ANGLE = math.radians(60.0)  # roll or pitch beyond this ends the episode
SETTLE_CHUNK = 0.05  # s; after a reset, simulate in chunks of this until the robot is at rest
SETTLE_MAX = 1.0  # s, upper bound on that settling
SETTLE_QVEL = 1e-3  # rad/s or m/s, "at rest"
POSE_NOISE = 0.01  # m and rad, half-width of the uniform initial pose noise
PAYLOAD_SIZE = (0.2, 0.2, 0.1)  # m, box the payload mass is spread over (sets its inertia)


def _pair(value: Any, name: str) -> Pair:
    """Coerce a 2-sequence (Hydra gives lists) to a float pair, with a clear error."""
    try:
        a, b = (float(x) for x in value)
    except (TypeError, ValueError):
        raise ValueError(f"UGVParams.{name}={value!r}: expected a pair of numbers (left, right)") from None
    if not (math.isfinite(a) and math.isfinite(b)):
        raise ValueError(f"UGVParams.{name}={value!r}: values must be finite")
    return (a, b)


@dataclass(frozen=True)
class UGVParams:
    """One physical regime of the UGV (what differs from the robot the controller believes in).

    payload_kg: mass on the deck (0 = empty). friction: scale of the wheel/floor sliding friction
    (1 = rubber on concrete, 0.2 = ice). wheel_radius_scale: true/nominal radius of the (left, right)
    wheel; the controller keeps using the nominal radius. motor_strength: scale of the (left, right)
    motor's torque limit and speed-loop gain. gains: the AFM intervention (v, w) multipliers.
    """

    payload_kg: float = 0.0
    friction: float = 1.0
    wheel_radius_scale: Pair = (1.0, 1.0)
    motor_strength: Pair = (1.0, 1.0)
    gains: Pair = (1.0, 1.0)

    def __post_init__(self) -> None:
        for name in ("wheel_radius_scale", "motor_strength", "gains"):
            object.__setattr__(self, name, _pair(getattr(self, name), name))
        object.__setattr__(self, "payload_kg", float(self.payload_kg))
        object.__setattr__(self, "friction", float(self.friction))
        if not 0.0 <= self.payload_kg <= 200.0:
            raise ValueError(f"UGVParams.payload_kg={self.payload_kg}: expected 0..200 kg")
        if not 0.0 < self.friction <= 5.0:
            raise ValueError(f"UGVParams.friction={self.friction}: expected a scale in (0, 5]")
        # Tyre wear to oversized tyres; outside this the chassis no longer rests on wheels + caster.
        if not all(0.7 <= s <= 1.5 for s in self.wheel_radius_scale):
            raise ValueError(f"UGVParams.wheel_radius_scale={self.wheel_radius_scale}: expected 0.7..1.5")
        if not all(0.0 <= s <= 5.0 for s in self.motor_strength):
            raise ValueError(f"UGVParams.motor_strength={self.motor_strength}: expected 0..5")


class _Nominal:
    """The model's as-compiled values, so every `set_params` starts from the same baseline."""

    def __init__(self, model: mujoco.MjModel, wheel_geoms: np.ndarray, wheel_bodies: np.ndarray) -> None:
        self.geom_friction = model.geom_friction.copy()
        self.wheel_size = model.geom_size[wheel_geoms].copy()
        self.wheel_inertia = model.body_inertia[wheel_bodies].copy()
        self.kv = model.actuator_gainprm[:, 0].copy()
        self.forcerange = model.actuator_forcerange.copy()
        self.wheel_radius = float(self.wheel_size[:, 0].mean())
        self.track = float(abs(model.body_pos[wheel_bodies[0], 1] - model.body_pos[wheel_bodies[1], 1]))
        self.max_wheel_speed = float(model.actuator_ctrlrange[:, 1].min())



def _yaw_quat(yaw: float) -> np.ndarray:
    return np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])


def _wrap(angle: float) -> float:
    """Wrap to [-pi, pi)."""
    return (angle + math.pi) % (2 * math.pi) - math.pi


class UGVEnv(MujocoRobotEnv):
    """Differential-drive robot; obs [x, y, yaw, v_forward, v_lateral, yaw_rate], action (v, w).

    Velocities are in the robot's planar (yaw-aligned) frame at the axle midpoint, where a
    non-slipping diff-drive has zero lateral velocity; yaw_rate is the world z angular rate.
    Reward is always 0: the task (waypoints) lives outside the robot.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 5}

    def __init__(
        self,
        params: UGVParams | None = None,
        dt: float = 0.2,
        render_mode: str | None = None,
        camera: str = "chase",
    ) -> None:
        self._load_mujoco("ugv.xml", render_mode, camera)
        self.dt = float(dt)
        self._nsub = self._substeps(self.dt)
        self.metadata = {**self.metadata, "render_fps": round(1.0 / self.dt)}

        m = self.model
        self._payload = m.body("payload").id
        self._wheel_bodies = np.array([m.body("wheel_left").id, m.body("wheel_right").id])
        self._wheel_geoms = np.array([m.geom("wheel_left").id, m.geom("wheel_right").id])
        self._actuators = np.array([m.actuator("wheel_left").id, m.actuator("wheel_right").id])
        self.nominal = _Nominal(m, self._wheel_geoms, self._wheel_bodies)

        self.action_space = spaces.Box(
            low=np.array([-MAX_V, -MAX_W], dtype=np.float32),
            high=np.array([MAX_V, MAX_W], dtype=np.float32),
            dtype=np.float32,
        )
        high = np.array([np.inf, np.inf, math.pi, np.inf, np.inf, np.inf])
        self.observation_space = spaces.Box(low=-high, high=high, dtype=np.float64)
        self._params = UGVParams()
        self.set_params(params or UGVParams())

    def _substeps(self, dt: float) -> int:
        n = round(dt / self.model.opt.timestep)
        if n < 1 or abs(n * self.model.opt.timestep - dt) > 1e-9:
            raise ValueError(f"dt={dt}: must be a positive multiple of the physics timestep "
                             f"{self.model.opt.timestep} s")
        return n

    # ---- regime -------------------------------------------------------------------------------
    @property
    def params(self) -> UGVParams:
        return self._params

    def set_gains(self, gains: Pair) -> None:
        """Change only the AFM intervention gains (no model edit; cheap mid-episode)."""
        self._params = replace(self._params, gains=gains)

    def set_params(self, params: UGVParams) -> None:
        """Apply a physical regime to the compiled model in place (no XML reload, state kept)."""
        if not isinstance(params, UGVParams):
            raise TypeError(f"set_params expects UGVParams, got {type(params).__name__}")
        self._set_payload(params.payload_kg)
        self._set_friction(params.friction)
        self._set_wheel_radii(params.wheel_radius_scale)
        self._set_motors(params.motor_strength)
        mujoco.mj_setConst(self.model, self._scratch)  # subtree masses, invweights, mean inertia
        self._params = params

    def _set_payload(self, kg: float) -> None:
        a, b, c = PAYLOAD_SIZE
        self.model.body_mass[self._payload] = kg
        self.model.body_inertia[self._payload] = kg / 12.0 * np.array([b * b + c * c, a * a + c * c,
                                                                       a * a + b * b])

    def _set_friction(self, scale: float) -> None:
        # Only sliding friction is scaled; the casters are frictionless (condim 1) anyway.
        self.model.geom_friction[:, 0] = self.nominal.geom_friction[:, 0] * scale

    def _set_wheel_radii(self, scale: Pair) -> None:
        # Mass stays; inertia grows with r^2 (same wheel, scaled geometry). rbound and aabb must
        # follow the size or the collision midphase would cull real contacts.
        s = np.asarray(scale)
        size = self.nominal.wheel_size.copy()
        size[:, 0] *= s
        self.model.geom_size[self._wheel_geoms] = size
        self.model.geom_rbound[self._wheel_geoms] = np.hypot(size[:, 0], size[:, 1])
        self.model.geom_aabb[self._wheel_geoms, 3:6] = np.stack([size[:, 0], size[:, 0], size[:, 1]], 1)
        self.model.body_inertia[self._wheel_bodies] = self.nominal.wheel_inertia * (s**2)[:, None]

    def _set_motors(self, strength: Pair) -> None:
        s = np.asarray(strength)
        kv = self.nominal.kv * s
        self.model.actuator_gainprm[self._actuators, 0] = kv
        self.model.actuator_biasprm[self._actuators, 2] = -kv
        self.model.actuator_forcerange[self._actuators] = self.nominal.forcerange * s[:, None]

    # ---- gymnasium API ------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """Place the robot at options['pose'] (x, y, yaw; default origin) plus small noise, settle."""
        super().reset(seed=seed)
        x, y, yaw = self._pose_option(options)
        nx, ny, nyaw = self.np_random.uniform(-POSE_NOISE, POSE_NOISE, size=3)
        mujoco.mj_resetData(self.model, self.data)
        r_max = float(self.model.geom_size[self._wheel_geoms, 0].max())
        self.data.qpos[0:3] = (x + nx, y + ny, r_max + 1e-3)
        self.data.qpos[3:7] = _yaw_quat(yaw + nyaw)
        self._settle()
        return self._obs(), {"gains": self._params.gains}

    def _settle(self) -> None:
        """Let the robot drop onto its wheels and caster (mismatched wheels tilt it) with the
        wheels held still, so an episode starts at rest; deterministic (no randomness)."""
        chunk = round(SETTLE_CHUNK / self.model.opt.timestep)
        for _ in range(round(SETTLE_MAX / SETTLE_CHUNK)):
            mujoco.mj_step(self.model, self.data, nstep=chunk)
            if np.abs(self.data.qvel).max() < SETTLE_QVEL:
                break
        self.data.time = 0.0

    @staticmethod
    def _pose_option(options: dict[str, Any] | None) -> tuple[float, float, float]:
        pose = (options or {}).get("pose", (0.0, 0.0, 0.0))
        try:
            x, y, yaw = (float(p) for p in pose)
        except (TypeError, ValueError):
            raise ValueError(f"reset option pose={pose!r}: expected (x, y, yaw)") from None
        return x, y, yaw

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        cmd = self.wheel_setpoints(action)
        self.data.ctrl[self._actuators] = cmd
        mujoco.mj_step(self.model, self.data, nstep=self._nsub)
        info = {"wheel_speed_cmd": cmd, "gains": self._params.gains}
        return self._obs(), 0.0, self._flipped(), False, info

    def wheel_setpoints(self, action: np.ndarray) -> np.ndarray:
        """(v, w) -> (left, right) wheel-speed set-points in rad/s, as the robot's low-level
        controller computes them: clip to the action box, apply the intervention gains, inverse
        kinematics with the *nominal* radius and track, then desaturate.

        Desaturation scales both wheels by one factor (like common diff-drive firmware), so an
        over-limit command keeps its curvature and only loses speed; clipping each wheel alone
        would turn a fast sharp turn into driving straight."""
        a = np.asarray(action, dtype=np.float64).reshape(2)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action={a!r}: must be finite")
        v, w = np.clip(a, self.action_space.low, self.action_space.high) * self._params.gains
        half = 0.5 * self.nominal.track * w
        speeds = np.array([v - half, v + half]) / self.nominal.wheel_radius
        peak = float(np.abs(speeds).max())
        lim = self.nominal.max_wheel_speed
        return speeds * (lim / peak) if peak > lim else speeds


    def _obs(self) -> np.ndarray:
        q, qd = self.data.qpos, self.data.qvel
        rot = self._rotation()
        yaw = math.atan2(rot[1, 0], rot[0, 0])
        c, s = math.cos(yaw), math.sin(yaw)
        vx, vy = qd[0], qd[1]  # free joint: world-frame linear velocity of the chassis origin
        yaw_rate = float(rot[2] @ qd[3:6])  # body angular velocity -> world z component
        return np.array([q[0], q[1], _wrap(yaw), c * vx + s * vy, -s * vx + c * vy, yaw_rate])

    def _flipped(self) -> bool:
        rot = self._rotation()
        pitch = math.asin(max(-1.0, min(1.0, -rot[2, 0])))
        roll = math.atan2(rot[2, 1], rot[2, 2])
        return abs(roll) > FLIP_ANGLE or abs(pitch) > FLIP_ANGLE


