"""One unit of work (an episode, a sequence, a training) and running it with its log and errors kept.

A unit function is a module-level `fn(shared, params, ctx) -> {"rows": [...], "payload": ..., "detail": ...}`:
`shared` holds the artifacts built once before fan-out (config, nominal model, refiner), `params`
says which unit this is, `ctx` collects its log and step rows. Module-level so Ray can pickle it by
reference; pure in its inputs so serial and Ray runs give the same rows. `payload` goes to the
driver only (e.g. a trace for a plot); `detail` (JSON-safe) is kept in units.json beside the rows,
so a resumed run still has it.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Report = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Unit:
    key: str  # unique and stable across runs: resume finds finished units by it
    params: dict[str, Any]
    label: str = ""


class UnitContext:
    """What a unit sees besides its inputs: a log kept per unit, a progress hook, the step log."""

    def __init__(self, key: str, report: Report | None = None, keep_steps: bool = False) -> None:
        self.key = key
        self.keep_steps = keep_steps
        self.steps: list[dict[str, Any]] = []
        self._report = report
        self._lines: list[str] = []

    def log(self, message: str) -> None:
        self._lines.append(f"[{time.strftime('%H:%M:%S')}] {message}")

    def report(self, completed: int, total: int, status: str = "") -> None:
        if self._report is not None:
            self._report(completed, total, status)

    def step(self, row: dict[str, Any]) -> None:
        if self.keep_steps:
            self.steps.append(row)

    @property
    def text(self) -> str:
        return "\n".join(self._lines)


class UnitProgress:
    """The progress API a runner's inner loops use (add_task/update/remove_task/log), reported
    through a unit's context: the unit's own bar when serial, its log on a worker."""

    def __init__(self, ctx: UnitContext) -> None:
        self.ctx = ctx
        self.totals: dict[int, float] = {}

    def add_task(self, description: str, total: float | None = None, **fields) -> int:
        self.totals[len(self.totals)] = total or 0
        return len(self.totals) - 1

    def update(self, task_id: int, completed: float | None = None, total: float | None = None,
               status: str = "", **fields) -> None:
        if total is not None:
            self.totals[task_id] = total
        if completed is not None:
            self.ctx.report(int(completed), int(self.totals.get(task_id) or 0), status)

    def remove_task(self, task_id: int) -> None:
        pass

    def log(self, *args) -> None:
        self.ctx.log(" ".join(str(a) for a in args))


@dataclass
class UnitResult:
    key: str
    rows: list[dict[str, Any]]
    seconds: float
    log: str = ""
    steps: list[dict[str, Any]] = field(default_factory=list)
    payload: Any = None
    detail: Any = None  # JSON-safe, stored in units.json with the rows
    error: str | None = None  # the unit's own failure (a lost worker is retried, not recorded here)
    worker: str = ""


UnitFn = Callable[[Any, dict[str, Any], UnitContext], dict[str, Any] | None]


def execute_unit(fn: UnitFn, shared: Any, unit: Unit, report: Report | None = None,
                 keep_steps: bool = False) -> UnitResult:
    """Run one unit; an exception becomes the unit's recorded error (traceback in its log), so the
    other units still finish. Ctrl-C is not caught."""
    ctx = UnitContext(unit.key, report, keep_steps)
    ctx.log(f"unit {unit.key} on {socket.gethostname()} pid {os.getpid()}")
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    payload, detail, error = None, None, None
    try:
        out = fn(shared, dict(unit.params), ctx) or {}
        rows, payload, detail = list(out.get("rows", [])), out.get("payload"), out.get("detail")
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        ctx.log(traceback.format_exc())
    seconds = time.perf_counter() - start
    ctx.log(f"{'failed' if error else 'finished'} in {seconds:.1f} s")
    return UnitResult(unit.key, rows, seconds, ctx.text, ctx.steps, payload, detail, error,
                      f"{socket.gethostname()}:{os.getpid()}")
