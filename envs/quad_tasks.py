"""Reference trajectories for the quadrotor: desired world position and velocity at time t.

Every reference is vectorized: `ref(t)` takes a float or an array of times of any shape and returns
`(pos, vel)` of shape `t.shape + (3,)`, so an MPC planner can query its whole horizon in one call.
Times past the end hold the final point (velocity 0), times before 0 hold the start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike

Vec3 = tuple[float, float, float]
HOME: Vec3 = (0.0, 0.0, 1.0)  # m, every built-in task starts here (the env's default start)


class Reference(Protocol):
    """A time-parameterized reference; `duration` is the task length in seconds."""

    @property
    def duration(self) -> float: ...

    def __call__(self, t: ArrayLike) -> tuple[np.ndarray, np.ndarray]: ...


def _as_time(t: ArrayLike) -> np.ndarray:
    return np.asarray(t, dtype=np.float64)


def _vec3(p: ArrayLike, name: str) -> Vec3:
    """A finite 3-vector as a float tuple (Hydra hands over lists), with a clear error."""
    a = np.asarray(p, dtype=np.float64).reshape(-1)
    if a.shape != (3,) or not np.all(np.isfinite(a)):
        raise ValueError(f"{name}={p!r}: expected a finite (x, y, z)")
    return (float(a[0]), float(a[1]), float(a[2]))


@dataclass(frozen=True)
class Hover:
    """Hold `point` for `duration` seconds."""

    point: Vec3 = HOME
    duration: float = 10.0

    def __call__(self, t: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        t = _as_time(t)
        pos = np.broadcast_to(np.asarray(self.point, dtype=np.float64), t.shape + (3,)).copy()
        return pos, np.zeros_like(pos)


@dataclass(frozen=True)
class Waypoints:
    """Straight legs through `points` at constant `speed` (m/s), pausing `dwell` s at each point.

    The reference is piecewise linear (a velocity step at each corner); a planner that looks
    ahead smooths the corners itself.
    """

    points: tuple[Vec3, ...]
    speed: float = 0.5
    dwell: float = 1.0
    knots: np.ndarray = field(init=False, repr=False, compare=False)
    knot_pos: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pts = np.asarray(self.points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) < 1:
            raise ValueError(f"waypoints: expected a (N, 3) list of points, got shape {pts.shape}")
        if self.speed <= 0.0 or self.dwell < 0.0:
            raise ValueError(f"waypoints: speed={self.speed} must be > 0 and dwell={self.dwell} >= 0")
        # Knots: arrive at point k, leave point k after the dwell.
        times, pos, t = [0.0], [pts[0]], self.dwell
        if self.dwell > 0.0:
            times.append(t)
            pos.append(pts[0])
        for a, b in zip(pts[:-1], pts[1:], strict=True):
            t += float(np.linalg.norm(b - a)) / self.speed
            times.append(t)
            pos.append(b)
            if self.dwell > 0.0:
                t += self.dwell
                times.append(t)
                pos.append(b)
        object.__setattr__(self, "knots", np.asarray(times))
        object.__setattr__(self, "knot_pos", np.asarray(pos))

    @property
    def duration(self) -> float:
        return float(self.knots[-1])

    def __call__(self, t: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        t = _as_time(t)
        flat = t.reshape(-1)
        pos = np.stack([np.interp(flat, self.knots, self.knot_pos[:, k]) for k in range(3)], axis=-1)
        # Velocity of the leg containing t (0 while dwelling and outside [0, duration]).
        seg = np.clip(np.searchsorted(self.knots, flat, side="right") - 1, 0, len(self.knots) - 2)
        dt = np.maximum(self.knots[seg + 1] - self.knots[seg], 1e-12)
        vel = (self.knot_pos[seg + 1] - self.knot_pos[seg]) / dt[:, None]
        outside = (flat < self.knots[0]) | (flat >= self.knots[-1])
        vel[outside] = 0.0
        return pos.reshape(t.shape + (3,)), vel.reshape(t.shape + (3,))


@dataclass(frozen=True)
class FigureEight:
    """Lemniscate of Gerono in a horizontal plane: x = a sin(w tau), y = b sin(2 w tau), z = const.

    Starts at the centre (the crossing point) from rest: the phase tau(t) is time-warped so the
    speed ramps up smoothly over the first `ramp` seconds (tau' = (1 - cos(pi t / ramp)) / 2),
    as a real mission starts from hover; without it the reference jumps to full speed at t = 0 and
    any tracker's error is dominated by that step. At full speed the peak is ~1.1 m/s (each axis
    <= 0.8 m/s), inside the 1 m/s-per-axis velocity command box.
    """

    center: Vec3 = HOME
    a: float = 1.0
    b: float = 0.5
    period: float = 8.0
    laps: int = 2
    ramp: float = 2.0

    @property
    def duration(self) -> float:
        return self.period * self.laps + self.ramp / 2.0

    def phase(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(tau, dtau/dt) of the ramped time warp, for t already clipped to [0, duration]."""
        if self.ramp <= 0.0:
            return t, np.ones_like(t)
        r = self.ramp
        inside = t < r
        tau = np.where(inside, t / 2.0 - r / (2.0 * math.pi) * np.sin(math.pi * np.minimum(t, r) / r), t - r / 2.0)
        rate = np.where(inside, (1.0 - np.cos(math.pi * np.minimum(t, r) / r)) / 2.0, 1.0)
        return tau, rate

    def __call__(self, t: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        t_raw = _as_time(t)
        tau, rate = self.phase(np.clip(t_raw, 0.0, self.duration))
        w = 2.0 * math.pi / self.period
        c = np.asarray(self.center, dtype=np.float64)
        pos = np.stack([c[0] + self.a * np.sin(w * tau), c[1] + self.b * np.sin(2 * w * tau),
                        np.full_like(tau, c[2])], axis=-1)
        vel = np.stack([self.a * w * np.cos(w * tau) * rate, 2 * self.b * w * np.cos(2 * w * tau) * rate,
                        np.zeros_like(tau)], axis=-1)
        vel[(t_raw < 0.0) | (t_raw > self.duration)] = 0.0
        return pos, vel


def hover(p0: Vec3 = HOME, duration: float = 10.0) -> Hover:
    """Hold p0."""
    return Hover(_vec3(p0, "hover p0"), float(duration))


DEFAULT_WAYPOINTS: tuple[Vec3, ...] = (
    HOME, (1.0, 0.0, 1.0), (1.0, 1.0, 1.5), (0.0, 1.0, 1.0), HOME,
)


def waypoints(points: ArrayLike = DEFAULT_WAYPOINTS, speed: float = 0.5, dwell: float = 1.0) -> Waypoints:
    """Visit points in order along straight legs."""
    pts = tuple(_vec3(p, "waypoint") for p in np.asarray(points, dtype=np.float64).reshape(-1, 3))
    return Waypoints(pts, float(speed), float(dwell))


def figure_eight(center: Vec3 = HOME, a: float = 1.0, b: float = 0.5, period: float = 8.0,
                 laps: int = 2, ramp: float = 2.0) -> FigureEight:
    """Figure eight of half-width a (x) and half-height b (y) around center, ramping up from rest."""
    if a <= 0.0 or b <= 0.0 or period <= 0.0 or laps < 1 or ramp < 0.0:
        raise ValueError(f"figure_eight: a={a}, b={b}, period={period} must be > 0, laps={laps} >= 1 "
                         f"and ramp={ramp} >= 0")
    return FigureEight(_vec3(center, "figure_eight center"), float(a), float(b), float(period), int(laps),
                       float(ramp))


TASKS = {"hover": hover, "waypoints": waypoints, "figure_eight": figure_eight}


@cache
def make_task(name: str) -> Reference:
    """The default reference of a named task."""
    try:
        return TASKS[name]()
    except KeyError:
        raise ValueError(f"task={name!r}: use one of {sorted(TASKS)}") from None


def reference(task_name: str, t: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(pos, vel) of the named default task at time(s) t, shape t.shape + (3,)."""
    return make_task(task_name)(t)


def task_duration(task_name: str) -> float:
    """Length of the named default task in seconds."""
    return float(make_task(task_name).duration)
