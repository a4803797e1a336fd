"""Config -> executor, and the driver side of a fanned-out experiment: ledger, ordered results, resume.

Every runner splits its work into units and calls `fan_out`; whether they run here or on Ray is
`runtime.executor`, and the results are the same either way (rows in the units' canonical order).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from robocl.build import checks as check
from robocl.errors import UsageError
from robocl.parallel.executor import EXECUTORS, ExecutorSettings, default_workers, run_units
from robocl.parallel.ledger import UnitLedger
from robocl.parallel.units import Unit, UnitFn, UnitResult


def executor_settings(cfg: DictConfig) -> ExecutorSettings:
    """runtime.executor / workers / threads / ray.address / max_retries, checked (one line each)."""
    kind = str(OmegaConf.select(cfg, "runtime.executor", default="serial"))
    if kind not in EXECUTORS:
        raise UsageError(f"runtime.executor={kind}: accepted {', '.join(EXECUTORS)}")
    threads = int(check.number(cfg, "runtime.threads", lo=0, integer=True)) or 1
    workers_value = OmegaConf.select(cfg, "runtime.workers")
    workers = default_workers(threads) if workers_value is None else int(
        check.number(cfg, "runtime.workers", lo=1, integer=True))
    address = OmegaConf.select(cfg, "runtime.ray.address")
    address = "" if address is None else str(address).strip()
    if address and kind != "ray":
        raise UsageError(f"runtime.ray.address={address}: needs runtime.executor=ray")
    retries = int(check.number(cfg, "runtime.max_retries", lo=0, integer=True)) \
        if OmegaConf.select(cfg, "runtime.max_retries") is not None else 3
    store = OmegaConf.select(cfg, "runtime.ray.object_store_mb")
    store = 512 if store is None else int(check.number(cfg, "runtime.ray.object_store_mb", lo=80, integer=True))
    if kind == "serial":
        workers = 1
    return ExecutorSettings(kind, workers, threads, address, retries, store)


def resuming(cfg: DictConfig) -> bool:
    return bool(OmegaConf.select(cfg, "resume", default=False))


def open_ledger(cfg: DictConfig, run_dir: Path) -> UnitLedger:
    """The run directory's ledger: the finished units when resuming (checked against cfg), else empty."""
    return UnitLedger(run_dir, OmegaConf.to_container(cfg, resolve=True), resume=resuming(cfg))


def fan_out(cfg: DictConfig, run_dir: Path, progress: Any, sink: Any, units: list[Unit], fn: UnitFn, shared: Any,
            logger: Any = None, on_result: Callable[[UnitResult], None] | None = None,
            build_shared: Callable[[list[Unit]], Any] | None = None, ledger: UnitLedger | None = None) -> UnitLedger:
    """Run the units not finished yet; every finished unit rewrites results.json (canonical order).

    `shared`: the artifacts every unit gets; or `build_shared(units still to run)` builds them (so a
    resumed run builds only what its remaining units need). Failed units are listed in
    results.json (`failed_units`) and make robocl-run exit 1 at the end. `ledger`: one the caller opened
    (`open_ledger`) to read finished units' details while the run goes on.
    """
    keys = [u.key for u in units]
    if len(set(keys)) != len(keys):
        raise ValueError("unit keys must be unique")
    ledger = open_ledger(cfg, run_dir) if ledger is None else ledger
    todo = ledger.pending(units)
    if len(todo) < len(units):
        progress.log(f"resume: {len(units) - len(todo)} of {len(units)} units already finished; running {len(todo)}")
    sink.runs[:] = ledger.rows(units)
    sink.flush()
    keep_steps = logger is not None and logger.wants_steps

    def finished(result: UnitResult) -> None:
        ledger.record(result)
        sink.runs[:] = ledger.rows(units)
        sink.extra["units"] = ledger.timing(units)
        failures = ledger.failures()
        if failures:
            sink.extra["failed_units"] = failures
        else:
            sink.extra.pop("failed_units", None)
        sink.flush()
        if logger is not None:
            for step in result.steps:
                logger.log_step(step)
            for row in result.rows:
                logger.log_run(row)
        if result.error:
            progress.log(f"[red]unit {result.key} failed[/]: {result.error} (log: {run_dir / 'units'})")
        if on_result is not None:
            on_result(result)

    if build_shared is not None:
        shared = build_shared(todo) if todo else None
    run_units(fn, shared, todo, executor_settings(cfg), finished, progress, keep_steps)
    return ledger
