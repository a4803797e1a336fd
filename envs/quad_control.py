"""Cascaded low-level quadrotor controller (PX4-offboard-like), plain numpy at the physics rate.

A planner never commands rotor thrusts: like a real autopilot's offboard mode it sends a
setpoint at 20-50 Hz, and this cascade turns it into rotor thrusts at 500 Hz:

    velocity mode (vx, vy, vz, yaw_rate), world ENU
        -> velocity PI -> desired acceleration -> desired body z-axis + collective thrust
    attitude mode (roll, pitch, yaw_rate, thrust fraction)        --^ (enters here)
        -> attitude P (geometric SO(3) error) -> body-rate setpoint
        -> rate PI -> torque (nominal inertia) -> motor mixing with saturation priorities

Everything the controller knows about the vehicle is `QuadNominal` (the *as-designed* mass,
inertia and rotor layout). A payload or a weak motor therefore is a genuine model mismatch that
only the integrators (and a learned model above) can absorb, as on a real vehicle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

GRAVITY = 9.81  # m/s^2
COMMANDS = ("velocity", "attitude")


@dataclass(frozen=True)
class QuadNominal:
    """What the controller believes about the vehicle.

    mass (kg), inertia (kg m^2, principal, body axes), max_thrust per rotor (N), rotor_xy (4, 2)
    rotor positions in the body frame (m), yaw_coeff (4,) signed drag-torque-per-thrust (m).
    """

    mass: float
    inertia: tuple[float, float, float]
    max_thrust: float
    rotor_xy: tuple[tuple[float, float], ...]
    yaw_coeff: tuple[float, ...]

    def allocation(self) -> np.ndarray:
        """B with [T, tau_x, tau_y, tau_z] = B @ rotor_thrusts (thrusts along body +z)."""
        xy = np.asarray(self.rotor_xy, dtype=np.float64)
        return np.stack([np.ones(len(xy)), xy[:, 1], -xy[:, 0], np.asarray(self.yaw_coeff)])

    @property
    def hover_thrust(self) -> float:
        """Per-rotor thrust that holds the nominal mass (N)."""
        return self.mass * GRAVITY / len(self.rotor_xy)


@dataclass(frozen=True)
class CascadeGains:
    """Loop gains, tuned for the Crazyflie-class model (time constants in the comments).

    Velocity loop: PI on the world-frame velocity error, output acceleration (1/s, 1/s^2).
    The vertical integral is strong (20 1/s^2) so that an unknown +60 % payload sags only
    ~0.6 g / 20 = 0.3 m before the integrator holds it. Measured closed-loop figures (nominal
    vehicle): horizontal velocity step time constant ~0.35 s (8 % overshoot); attitude step 63 % in
    ~80 ms (4 % overshoot); rate loop crossover ~35 rad/s against the 20 ms motor lag. The stiff
    rate integral (200 1/s^2) absorbs a 70 %-efficiency motor with < 0.1 rad transient tilt.
    """

    vel_p: tuple[float, float, float] = (3.0, 3.0, 8.0)
    vel_i: tuple[float, float, float] = (2.0, 2.0, 20.0)
    vel_i_limit: tuple[float, float, float] = (3.0, 3.0, 8.0)  # m/s^2, integrator authority
    max_tilt: float = math.radians(35.0)  # rad, velocity mode never asks for more
    acc_z_limits: tuple[float, float] = (-0.8 * GRAVITY, 1.0 * GRAVITY)  # m/s^2
    att_p: tuple[float, float, float] = (12.0, 12.0, 4.0)  # 1/s
    max_rate: tuple[float, float, float] = (10.0, 10.0, 3.0)  # rad/s, body-rate setpoint limits
    rate_p: tuple[float, float, float] = (35.0, 35.0, 12.0)  # 1/s
    rate_i: tuple[float, float, float] = (200.0, 200.0, 20.0)  # 1/s^2
    rate_i_limit: tuple[float, float, float] = (300.0, 300.0, 30.0)  # rad/s^2
    yaw_lead: float = 0.5  # rad, how far the integrated yaw setpoint may run ahead of the yaw
    min_thrust_frac: float = 0.05  # collective floor in velocity mode (keeps attitude authority)


def _vee_skew(m: np.ndarray) -> np.ndarray:
    """vee(M - M^T) / 2 for a 3x3 M: the axis part of a rotation-error matrix."""
    return 0.5 * np.array([m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1]])


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """3-vector cross product (np.cross costs ~15 us on 3-vectors; this loop runs at 500 Hz)."""
    a0, a1, a2 = float(a[0]), float(a[1]), float(a[2])
    b0, b1, b2 = float(b[0]), float(b[1]), float(b[2])
    return np.array([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0])


def _clip(x: np.ndarray, lim: np.ndarray) -> np.ndarray:
    """Symmetric elementwise clip to [-lim, lim] (cheaper than np.clip on tiny arrays)."""
    return np.minimum(np.maximum(x, -lim), lim)


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2.0 * math.pi) - math.pi


def rotation_from_euler(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """ZYX (yaw, pitch, roll) Euler angles -> body-to-world rotation matrix."""
    cr, sr, cp, sp, cy, sy = (math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch),
                              math.cos(yaw), math.sin(yaw))
    return np.array([[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                     [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                     [-sp, cp * sr, cp * cr]])


def _rotation_from_z_yaw(z_axis: np.ndarray, yaw: float) -> np.ndarray:
    """Rotation whose body z is `z_axis` and whose heading (x projected on the ground) is yaw."""
    x_c = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    y_b = _cross(z_axis, x_c)
    y_b /= math.sqrt(y_b @ y_b)  # z_axis is never horizontal here (tilt <= 90 deg)
    return np.stack([_cross(y_b, z_axis), y_b, z_axis], axis=1)


class Mixer:
    """Rotor thrusts from (collective thrust, body torques), with PX4-like saturation priorities.

    Roll/pitch torque is kept first (losing it flips the vehicle), then yaw torque, and the
    collective is shifted last ("air mode": thrust is sacrificed to keep attitude authority).
    """

    def __init__(self, nominal: QuadNominal) -> None:
        self.max_thrust = nominal.max_thrust
        self.b_inv = np.linalg.inv(nominal.allocation())

    def __call__(self, thrust: float, torque: np.ndarray) -> np.ndarray:
        fmax = self.max_thrust
        rp = self.b_inv[:, 1:3] @ torque[:2]
        span = rp.max() - rp.min()
        if span > fmax:
            rp *= fmax / span
        yaw = self.b_inv[:, 3] * torque[2]
        f = rp + yaw
        if f.max() - f.min() > fmax:
            f = rp + self._yaw_scale(rp, yaw, fmax) * yaw
        f += self.b_inv[:, 0] * thrust
        hi, lo = f.max(), f.min()
        if hi > fmax:
            f -= hi - fmax
        elif lo < 0.0:
            f -= lo
        return np.minimum(np.maximum(f, 0.0), fmax)

    @staticmethod
    def _yaw_scale(rp: np.ndarray, yaw: np.ndarray, fmax: float) -> float:
        """Largest s in [0, 1] with span(rp + s * yaw) <= fmax (pairwise linear constraints)."""
        da = rp[:, None] - rp[None, :]
        db = yaw[:, None] - yaw[None, :]
        pos = db > 1e-12
        if not pos.any():
            return 1.0
        return float(np.clip(((fmax - da[pos]) / db[pos]).min(), 0.0, 1.0))


class CascadedController:
    """Setpoint -> rotor thrusts, one `update` per physics step (dt seconds).

    `command="velocity"`: setpoint (vx, vy, vz, yaw_rate), m/s and rad/s, world frame.
    `command="attitude"`: setpoint (roll, pitch, yaw_rate, thrust), rad, rad/s and collective
    thrust as a fraction of the nominal maximum (4 * max_thrust); hover is ~0.46.
    """

    def __init__(self, nominal: QuadNominal, dt: float, command: str = "velocity",
                 gains: CascadeGains | None = None) -> None:
        if command not in COMMANDS:
            raise ValueError(f"command={command!r}: use one of {COMMANDS}")
        self.nominal = nominal
        self.dt = float(dt)
        self.command = command
        self.gains = gains or CascadeGains()
        self.mixer = Mixer(nominal)
        g = self.gains
        self._inertia = np.asarray(nominal.inertia, dtype=np.float64)
        self._vel_p, self._vel_i = np.asarray(g.vel_p), np.asarray(g.vel_i)
        self._vel_i_lim = np.asarray(g.vel_i_limit) / np.maximum(self._vel_i, 1e-9)  # in m
        self._att_p, self._max_rate = np.asarray(g.att_p), np.asarray(g.max_rate)
        self._rate_p, self._rate_i = np.asarray(g.rate_p), np.asarray(g.rate_i)
        self._rate_i_lim = np.asarray(g.rate_i_limit) / np.maximum(self._rate_i, 1e-9)  # in rad
        self._max_collective = 4.0 * nominal.max_thrust
        self.setpoint = np.zeros(4)
        self.reset(0.0)

    def reset(self, yaw: float) -> None:
        """Zero the integrators and the setpoint; hold the current heading."""
        self.i_vel = np.zeros(3)
        self.i_rate = np.zeros(3)
        self.yaw_sp = float(yaw)
        self.setpoint = np.zeros(4)
        if self.command == "attitude":
            self.setpoint[3] = 4.0 * self.nominal.hover_thrust / self._max_collective

    def set_setpoint(self, setpoint: np.ndarray) -> None:
        """The (already clipped and gain-scaled) command, held until the next call."""
        self.setpoint = np.asarray(setpoint, dtype=np.float64).reshape(4)

    def update(self, vel: np.ndarray, rot: np.ndarray, omega: np.ndarray) -> np.ndarray:
        """One control tick: world velocity (3,), body-to-world rotation (3, 3), body rates (3,)
        -> rotor thrust commands (4,) in N."""
        yaw = math.atan2(rot[1, 0], rot[0, 0])
        yaw_rate = float(self.setpoint[3] if self.command == "velocity" else self.setpoint[2])
        self._advance_yaw(yaw, yaw_rate)
        if self.command == "velocity":
            rot_des, thrust = self._velocity_loop(vel, rot)
        else:
            rot_des, thrust = self._attitude_target()
        rate_sp = self._attitude_loop(rot, rot_des, yaw_rate)
        torque = self._rate_loop(rate_sp, omega)
        return self.mixer(thrust, torque)

    def _advance_yaw(self, yaw: float, yaw_rate: float) -> None:
        """Integrate the heading setpoint, never more than yaw_lead ahead (no wind-up)."""
        lead = self.gains.yaw_lead
        err = _wrap(self.yaw_sp + yaw_rate * self.dt - yaw)
        self.yaw_sp = _wrap(yaw + min(max(err, -lead), lead))

    def _velocity_loop(self, vel: np.ndarray, rot: np.ndarray) -> tuple[np.ndarray, float]:
        g = self.gains
        err = self.setpoint[:3] - vel
        self.i_vel = _clip(self.i_vel + err * self.dt, self._vel_i_lim)
        acc = self._vel_p * err + self._vel_i * self.i_vel
        acc[2] = min(max(acc[2], g.acc_z_limits[0]), g.acc_z_limits[1])
        force = self.nominal.mass * (acc + np.array([0.0, 0.0, GRAVITY]))
        horiz, h_max = math.hypot(force[0], force[1]), force[2] * math.tan(g.max_tilt)
        if horiz > h_max:  # keep the vertical request, shorten the horizontal one
            force[:2] *= h_max / horiz
        z_des = force / math.sqrt(force @ force)
        thrust = float(force @ rot[:, 2])  # project onto the current body z (PX4 style)
        thrust = min(max(thrust, g.min_thrust_frac * self._max_collective), self._max_collective)
        return _rotation_from_z_yaw(z_des, self.yaw_sp), thrust

    def _attitude_target(self) -> tuple[np.ndarray, float]:
        roll, pitch, _, frac = self.setpoint
        rot_des = rotation_from_euler(float(roll), float(pitch), self.yaw_sp)
        return rot_des, float(frac) * self._max_collective

    def _attitude_loop(self, rot: np.ndarray, rot_des: np.ndarray, yaw_rate: float) -> np.ndarray:
        err = _vee_skew(rot_des.T @ rot)  # geometric attitude error, body frame (Lee et al. 2010)
        rate_sp = -self._att_p * err + rot[2] * yaw_rate  # + yaw-rate feed-forward in body axes
        return _clip(rate_sp, self._max_rate)

    def _rate_loop(self, rate_sp: np.ndarray, omega: np.ndarray) -> np.ndarray:
        err = rate_sp - omega
        self.i_rate = _clip(self.i_rate + err * self.dt, self._rate_i_lim)
        alpha = self._rate_p * err + self._rate_i * self.i_rate
        return self._inertia * alpha + _cross(omega, self._inertia * omega)
