"""Fan units out: in this process (`serial`) or as Ray tasks (`ray`) on a local instance or a cluster.

The shared artifacts go into Ray's object store once (`ray.put`) and reach every task from there, so
a cluster without a shared file system works. At most `workers` units are in flight. A worker lost
mid-unit (killed, out of memory, node gone) is retried by Ray up to `max_retries` times; a unit that
raises is not retried: its error is recorded and the other units go on.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from robocl.parallel.units import Unit, UnitFn, UnitResult, execute_unit

EXECUTORS = ("serial", "ray")


@dataclass(frozen=True)
class ExecutorSettings:
    kind: str = "serial"
    workers: int = 1
    threads: int = 1  # torch threads per unit (and the CPUs a Ray task reserves)
    address: str = ""  # "": start a local Ray instance for this run; "auto", "HOST:PORT" or "ray://HOST:PORT": join
    max_retries: int = 3
    object_store_mb: int = 512  # local instance only


def default_workers(threads: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, threads))


def run_units(fn: UnitFn, shared: Any, units: list[Unit], settings: ExecutorSettings,
              on_result: Callable[[UnitResult], None], progress: Any = None, keep_steps: bool = False) -> None:
    """Run every unit and hand each result to `on_result` as it finishes (in completion order)."""
    if not units:
        return
    overall = None if progress is None else progress.add_task(
        f"units ({settings.kind}, {settings.workers} worker{'s' * (settings.workers != 1)})", total=len(units),
        status="")

    def finished(result: UnitResult, done: int) -> None:
        on_result(result)
        if overall is not None:
            state = f"FAILED {result.error}" if result.error else f"{result.seconds:.1f} s"
            progress.update(overall, completed=done, status=f"last: {result.key} {state}"[:90])

    if settings.kind == "serial":
        _run_serial(fn, shared, units, finished, progress, keep_steps)
    elif settings.kind == "ray":
        _run_ray(fn, shared, units, settings, finished, progress, keep_steps)
    else:
        raise ValueError(f"executor {settings.kind!r}: accepted {', '.join(EXECUTORS)}")
    if overall is not None:
        progress.remove_task(overall)


def _run_serial(fn, shared, units, finished, progress, keep_steps) -> None:
    for done, unit in enumerate(units, 1):
        report = None
        if progress is not None:
            bar = progress.add_task(unit.label or unit.key, total=1, status="")

            def report(completed: int, total: int, status: str, bar=bar) -> None:
                progress.update(bar, completed=completed, total=total, status=status)

        result = execute_unit(fn, shared, unit, report, keep_steps)
        if progress is not None:
            progress.remove_task(bar)
        finished(result, done)


def _ray_entry(fn: UnitFn, shared: Any, unit: Unit, threads: int, keep_steps: bool) -> UnitResult:
    """What runs in a Ray worker: the same unit function the serial executor calls."""
    import torch

    torch.set_num_threads(threads)
    return execute_unit(fn, shared, unit, None, keep_steps)


def _warm(modules: list[str]) -> int:
    """Import what units will need, so a worker's first unit does not pay for torch and MuJoCo."""
    for name in modules:
        importlib.import_module(name)
    return os.getpid()


def connect(settings: ExecutorSettings, warm: list[str] | None = None) -> bool:
    """Join the cluster at `address`, or start a local instance; True when this run connected (and so
    disconnects, which for a local instance stops it). `warm`: modules every worker imports now."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        return False
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": "warning"}
    if settings.address:
        ray.init(address=settings.address, **quiet)
    else:
        # address="local": a new instance even where another one runs (ray.init would join that one);
        # loopback: nothing outside this machine joins it
        ray.init(address="local", num_cpus=settings.workers * settings.threads,
                 object_store_memory=settings.object_store_mb * 2**20, _node_ip_address="127.0.0.1", **quiet)
    if warm:
        task = ray.remote(_warm).options(num_cpus=settings.threads)
        [task.remote(list(warm)) for _ in range(settings.workers)]  # not awaited: they run while the driver prepares
    return True


@contextmanager
def executor_session(settings: ExecutorSettings, warm: list[str] | None = None) -> Iterator[None]:
    """For `ray`: connect (start the local instance) before the driver builds the shared artifacts, so
    the workers import `warm` meanwhile, and disconnect at the end; every `run_units` inside reuses the
    connection. (In the main thread: Ray's local processes die with the thread that started them.)"""
    if settings.kind != "ray":
        yield
        return
    ours = connect(settings, warm)
    try:
        yield
    finally:
        if ours:
            import ray

            ray.shutdown()


def _run_ray(fn, shared, units, settings: ExecutorSettings, finished, progress, keep_steps) -> None:
    import ray
    from ray.exceptions import RayError, RayTaskError

    started = connect(settings)
    try:
        if progress is not None:
            where = settings.address or "a local Ray instance"
            progress.log(f"ray: {len(units)} units on {where} ({ray.cluster_resources().get('CPU', 0):g} CPUs)")
        shared_ref = ray.put(shared)
        task = ray.remote(_ray_entry).options(num_cpus=settings.threads, max_retries=settings.max_retries,
                                              retry_exceptions=False, name="robocl_unit")
        queue = list(units)
        in_flight: dict[Any, Unit] = {}

        def submit() -> None:
            unit = queue.pop(0)
            in_flight[task.remote(fn, shared_ref, unit, settings.threads, keep_steps)] = unit

        for _ in range(min(settings.workers, len(queue))):
            submit()
        done = 0
        while in_flight:
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in ready:
                unit = in_flight.pop(ref)
                try:
                    result = ray.get(ref)
                except RayTaskError as exc:  # cannot happen for a unit's own error (caught inside), kept safe
                    result = UnitResult(unit.key, [], 0.0, error=f"{type(exc).__name__}: {exc}")
                except RayError as exc:  # the worker was lost more often than max_retries
                    result = UnitResult(unit.key, [], 0.0, error=f"worker lost after {settings.max_retries} retries: "
                                                                   f"{type(exc).__name__}")
                done += 1
                finished(result, done)
                if queue:
                    submit()
    finally:
        if started:
            ray.shutdown()
