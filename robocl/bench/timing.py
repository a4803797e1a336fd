"""Side-by-side timing: candidates are interleaved call by call so machine noise hits all alike."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def interleaved_times(candidates: dict[str, Callable[[], object]], repeats: int, warmup: int,
                      progress: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """Milliseconds per call for each candidate, measured alternately (A, B, A, B, ...)."""
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for i in range(repeats):
        for name, fn in candidates.items():
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) * 1e3)
        if progress:
            progress(i + 1)
    return {name: np.asarray(v) for name, v in times.items()}


def timing_row(name: str, task: str, ms: np.ndarray, prefix: str = "plan") -> dict:
    return {"method": name, "seed": 0, "task": task, f"{prefix}_ms_median": float(np.median(ms)),
            f"{prefix}_ms_p95": float(np.percentile(ms, 95)), "calls": int(ms.size)}


def ratio_summary(times: dict[str, np.ndarray], ours: str) -> dict[str, float]:
    """peer/ours ratios of median and p95 (above 1 means ours is faster)."""
    out = {}
    base = times[ours]
    for name, ms in times.items():
        if name == ours:
            continue
        out[f"{name}_over_{ours}_median"] = float(np.median(ms) / np.median(base))
        out[f"{name}_over_{ours}_p95"] = float(np.percentile(ms, 95) / np.percentile(base, 95))
    return out
