"""Waypoint courses: the shipped city maps by name, or a user's CSV of x,y metres.

Errors are `CourseError` (a ValueError) with one line naming the bad value and what is accepted,
because the value usually comes straight from a config override (`task.map=...`) and the CLI
prints the message as is.
"""

from __future__ import annotations

import csv
import io
import math
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

import numpy as np

__all__ = ["CourseError", "list_courses", "load_course"]


class CourseError(ValueError):
    """A course name or file that cannot be used; the message is one user-facing line."""


def _course_dir() -> Traversable:
    return files(__package__ or "robocl_envs").joinpath("courses")


def list_courses() -> list[str]:
    """Names of the shipped courses (for `load_course` and for error messages)."""
    return sorted(p.name[:-4] for p in _course_dir().iterdir() if p.name.endswith(".csv"))


def _accepted() -> str:
    return f"use one of {', '.join(list_courses())} or a path to a .csv of x,y metres"


def load_course(name_or_path: str, *, key: str = "task.map") -> np.ndarray:
    """Waypoints as an (N, 2) float64 array of x, y metres.

    `name_or_path` is a shipped course name (see `list_courses`) or a path ending in `.csv` with
    a header `x,y`. `key` only labels error messages with the config key the value came from.
    """
    where = f"{key}={name_or_path!r}"
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise CourseError(f"{where}: expected a course name or a .csv path; {_accepted()}")
    if name_or_path.lower().endswith(".csv"):
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise CourseError(f"{where}: no such file ({path.resolve()}); {_accepted()}")
        return _parse(path.read_text(encoding="utf-8", errors="replace"), where)
    resource = _course_dir().joinpath(f"{name_or_path}.csv")
    if name_or_path not in list_courses() or not resource.is_file():
        raise CourseError(f"{where}: no such course; {_accepted()}")
    return _parse(resource.read_text(encoding="utf-8"), where)


def _parse(text: str, where: str) -> np.ndarray:
    reader = csv.reader(io.StringIO(text))
    rows = [(reader.line_num, r) for r in reader if any(cell.strip() for cell in r)]
    if not rows:
        raise CourseError(f"{where}: the file is empty; expected a header x,y and one x,y row per waypoint")
    header = [cell.strip().lower() for cell in rows[0][1]]
    if header != ["x", "y"]:
        raise CourseError(f"{where}: the header is {','.join(rows[0][1])!r}; expected exactly two columns "
                          "named x,y (metres)")
    if len(rows) == 1:
        raise CourseError(f"{where}: no waypoints after the header x,y; expected one x,y row per waypoint")
    return np.array([_row(r, line, where) for line, r in rows[1:]], dtype=np.float64)


def _row(row: list[str], line: int, where: str) -> tuple[float, float]:
    if len(row) != 2:
        raise CourseError(f"{where}: line {line} has {len(row)} columns ({','.join(row)!r}); "
                          "expected 2 (x,y metres)")
    try:
        x, y = float(row[0]), float(row[1])
    except ValueError:
        raise CourseError(f"{where}: line {line} ({','.join(row)!r}) is not numeric; "
                          "expected x,y in metres") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise CourseError(f"{where}: line {line} ({','.join(row)!r}) is not finite; expected x,y in metres")
    return x, y
