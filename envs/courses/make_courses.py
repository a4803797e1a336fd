"""Regenerate the shipped waypoint courses (deterministic): `python envs/courses/make_courses.py`.

A course is drawn like a turtle path from the robot's start (0, 0, heading +x): straight streets,
90-degree corners at intersections, gentler arcs, and one U-turn around a block. Waypoints are
~3 m apart (2-4 m with corners), the first 2.5 m ahead, as in the AFM city-scale maps (~33 points).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

SPACING = 3.0  # m, target distance between consecutive waypoints
FIRST = 2.5  # m, first waypoint straight ahead of the start

# ("S", length m) straight; ("T", deg) corner turning in place (left +); ("A", deg, radius m) arc.
Plan = list[tuple]

CITY_A: Plan = [
    ("S", FIRST + 9.0), ("T", 90), ("S", 9.0), ("T", -90), ("S", 12.0),  # east, north, east
    ("A", -45, 7.6), ("S", 6.0), ("A", -45, 7.6), ("S", 6.0),             # gentle bend to south
    ("T", -90), ("S", 9.0),                                               # west
    ("A", 180, 3.0), ("S", 9.0),                                          # U-turn back east
    ("T", -90), ("S", 6.0), ("A", -90, 4.0),                              # south, swing west
]

CITY_B: Plan = [
    ("S", FIRST + 6.0), ("T", -90), ("S", 9.0), ("T", 90), ("S", 9.0),   # east, south, east
    ("A", 60, 5.7), ("S", 6.0), ("A", -60, 5.7), ("S", 6.0),             # S-bend up and on east
    ("T", 90), ("S", 9.0), ("T", 90), ("S", 9.0),                         # north, west
    ("A", -180, 3.0), ("S", 9.0),                                         # U-turn back east
    ("T", 45), ("S", 6.0),                                                # half-corner north-east
]


def trace(plan: Plan) -> list[tuple[float, float]]:
    """Walk the plan and emit waypoints about every SPACING metres (corners land on waypoints)."""
    x = y = heading = 0.0
    points: list[tuple[float, float]] = []
    first = True
    for step in plan:
        kind = step[0]
        if kind == "T":
            heading += math.radians(step[1])
        elif kind == "S":
            length = step[1] - (FIRST if first else 0.0)
            if first:
                x += FIRST
                points.append((x, y))
                first = False
            n = max(1, round(length / SPACING))
            for _ in range(n):
                x += length / n * math.cos(heading)
                y += length / n * math.sin(heading)
                points.append((x, y))
        elif kind == "A":
            turn, radius = math.radians(step[1]), step[2]
            n = max(1, round(abs(turn) * radius / SPACING))
            side = math.copysign(1.0, turn)  # centre of the arc is on the left for a left turn
            cx, cy = x - side * radius * math.sin(heading), y + side * radius * math.cos(heading)
            for _ in range(n):
                heading += turn / n
                x = cx + side * radius * math.sin(heading)
                y = cy - side * radius * math.cos(heading)
                points.append((x, y))
    return points


def write(path: Path, points: list[tuple[float, float]]) -> None:
    with path.open("w", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["x", "y"])
        out.writerows((f"{px:.3f}", f"{py:.3f}") for px, py in points)


def main() -> None:
    here = Path(__file__).resolve().parent
    for name, plan in (("city_a", CITY_A), ("city_b", CITY_B)):
        points = trace(plan)
        gaps = [math.dist(a, b) for a, b in zip(points, points[1:], strict=False)]
        write(here / f"{name}.csv", points)
        print(f"{name}: {len(points)} waypoints, spacing {min(gaps):.2f}..{max(gaps):.2f} m")


if __name__ == "__main__":
    main()
