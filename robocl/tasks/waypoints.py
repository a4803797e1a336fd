"""Waypoint missions and the AFM intervention schedule."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class WaypointMission:
    """Visit waypoints in order; one is reached within `reach_radius`, skipped after a timeout.

    Waypoints have as many position dimensions as the robot moves in (x, y for the UGV; x, y, z
    for the quadrotor); `update` compares that many leading coordinates of the position.
    Success rate is reached / total, as in the AFM protocol.
    """

    def __init__(self, waypoints: np.ndarray, reach_radius: float = 0.5, timeout_steps: int = 100) -> None:
        self.waypoints = np.asarray(waypoints, dtype=float)
        self.reach_radius = reach_radius
        self.timeout_steps = timeout_steps
        self.index = 0
        self.reached: list[bool] = []
        self._steps_on_current = 0

    @property
    def done(self) -> bool:
        return self.index >= len(self.waypoints)

    @property
    def goal(self) -> np.ndarray:
        return self.waypoints[min(self.index, len(self.waypoints) - 1)]

    @property
    def progress(self) -> float:
        """Fraction of waypoints passed (reached or skipped)."""
        return self.index / len(self.waypoints)

    @property
    def success_rate(self) -> float:
        return sum(self.reached) / len(self.waypoints)

    def update(self, position: np.ndarray) -> str | None:
        """Advance on reach or timeout; returns 'reached', 'timeout' or None."""
        if self.done:
            return None
        self._steps_on_current += 1
        dims = self.waypoints.shape[1]
        if np.linalg.norm(np.asarray(position[:dims], dtype=float) - self.goal) <= self.reach_radius:
            event = "reached"
            self.reached.append(True)
        elif self._steps_on_current >= self.timeout_steps:
            event = "timeout"
            self.reached.append(False)
        else:
            return None
        self.index += 1
        self._steps_on_current = 0
        return event


class GainSchedule:
    """Interventions applied in sequence inside the window [start, end) of mission progress.

    With K gain tuples the window is split into K equal parts; outside it the gains are 1.
    """

    def __init__(self, gains: Sequence[Sequence[float]], window: Sequence[float] = (0.15, 0.8)) -> None:
        self.gains = [tuple(float(x) for x in g) for g in gains]
        self.start, self.end = float(window[0]), float(window[1])
        self.dim = len(self.gains[0]) if self.gains else 2

    def at(self, progress: float) -> tuple[float, ...]:
        nominal = (1.0,) * self.dim
        if not self.gains or progress < self.start or progress >= self.end:
            return nominal
        k = int((progress - self.start) / (self.end - self.start) * len(self.gains))
        return self.gains[min(k, len(self.gains) - 1)]

    def label(self, progress: float) -> str:
        g = self.at(progress)
        return "nominal" if all(x == 1.0 for x in g) else "gains(" + ",".join(f"{x:g}" for x in g) + ")"
