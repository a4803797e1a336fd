"""Path-tracking error against a waypoint polyline (vectorized)."""

from __future__ import annotations

import numpy as np


def distance_to_polyline(points: np.ndarray, polyline: np.ndarray) -> np.ndarray:
    """Shortest distance from each point (N, 2) to a polyline of vertices (M, 2)."""
    a, b = polyline[:-1], polyline[1:]
    ab = b - a
    denom = np.maximum((ab**2).sum(-1), 1e-12)
    rel = points[:, None, :] - a[None]
    t = np.clip((rel * ab[None]).sum(-1) / denom, 0.0, 1.0)
    closest = a[None] + t[..., None] * ab[None]
    return np.linalg.norm(points[:, None, :] - closest, axis=-1).min(1)


def tracking_rmse(path: np.ndarray, waypoints: np.ndarray, start: np.ndarray | None = None) -> float:
    """RMS cross-track error of a driven path to the course (from `start` through the waypoints)."""
    line = waypoints if start is None else np.vstack([start[None, :2], waypoints])
    return float(np.sqrt(np.mean(distance_to_polyline(path[:, :2], line) ** 2)))


def recovery_steps(on_course: np.ndarray, start: int, hold: int, finished: bool = False) -> int | None:
    """Steps from `start` until the robot is back on course: the first step t >= start that begins
    `hold` consecutive on-course steps (a shorter on-course run that lasts to the end of a `finished`
    episode counts too). 0 when it never left the course; None when it never came back."""
    flags = np.asarray(on_course, dtype=bool)[start:]
    if finished:
        flags = np.concatenate([flags, np.ones(hold, dtype=bool)])
    if len(flags) < hold:
        return None
    runs = np.convolve(flags.astype(int), np.ones(hold, dtype=int), mode="valid") == hold
    first = np.flatnonzero(runs)
    return int(first[0]) if len(first) else None
