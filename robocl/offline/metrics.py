"""Metric functions over per-transition error series (plain numpy; hand-checkable).

- regime changes: where the label changes (`label_changes`) (without labels the evaluator detects them
  with robocl.continual.changepoint, the one change detector);
- `time_to_adapt`: steps after a change until the error is back within (1 + tolerance) of the
  pre-change level;
- `forgetting`: error of the final model on an earlier regime minus its error at the end of that regime.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Change:
    index: int  # first transition of the new regime
    before: str
    after: str


def label_changes(labels: list[str | None]) -> list[Change]:
    """Indices where a known regime label differs from the previous known one."""
    out: list[Change] = []
    prev: str | None = None
    for i, label in enumerate(labels):
        if label is None:
            continue
        if prev is not None and label != prev:
            out.append(Change(i, prev, label))
        prev = label
    return out


def trailing_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last `window` values at each index (fewer at the start)."""
    v = np.asarray(values, dtype=float)
    c = np.concatenate([[0.0], np.cumsum(v)])
    idx = np.arange(1, len(v) + 1)
    lo = np.maximum(0, idx - window)
    return (c[idx] - c[lo]) / (idx - lo)


def time_to_adapt(errors: np.ndarray, change: int, end: int | None = None, pre_window: int = 20,
                  smooth: int = 5, tolerance: float = 0.2, hold: int = 1,
                  start: int = 0) -> tuple[int | None, float | None]:
    """(steps, pre-change level) for the change at index `change`.

    The pre-change level is the mean error over the `pre_window` transitions before the change (not
    before `start`, the previous change). After
    the change the error is smoothed with a trailing mean over `smooth` transitions that starts at the
    change (so a window never mixes regimes); the time to adapt is the first j >= 0 with
    smoothed[change + j] <= (1 + tolerance) * level for `hold` consecutive steps (fewer if the segment
    ends first: a calm moment is not adaptation), looking no further than `end` (the next change).
    None if the error never comes back (or there is no pre-change data).
    """
    e = np.asarray(errors, dtype=float)
    end = len(e) if end is None else min(end, len(e))
    pre = e[max(0, start, change - pre_window):change]
    pre = pre[np.isfinite(pre)]
    if len(pre) == 0 or change >= end:
        return None, None
    level = float(pre.mean())
    post = trailing_mean(e[change:end], smooth)
    ok = post <= (1.0 + tolerance) * level
    run = 0
    for j in range(len(ok) - 1, -1, -1):  # run[j] = consecutive in-band steps from j on
        run = run + 1 if ok[j] else 0
        ok[j] = run >= min(hold, len(ok) - j)
    hits = np.nonzero(ok)[0]
    return (int(hits[0]) if len(hits) else None), level


def forgetting(final_error: dict[str, float], end_error: dict[str, float], last_regime: str | None) -> float | None:
    """Mean over earlier regimes (not the last one) of final-model error minus end-of-regime error."""
    diffs = [final_error[r] - end_error[r] for r in final_error if r != last_regime and r in end_error]
    return float(np.mean(diffs)) if diffs else None


class Reservoir:
    """A fixed-size uniform sample of a stream (Algorithm R) per key: data to measure forgetting on."""

    def __init__(self, capacity: int, seed: int = 0) -> None:
        self.capacity = capacity
        self.rng = np.random.default_rng(seed)
        self.seen: dict[str, int] = {}
        self.items: dict[str, list] = {}

    def add(self, key: str, item: tuple) -> None:
        n = self.seen.get(key, 0)
        self.seen[key] = n + 1
        rows = self.items.setdefault(key, [])
        if n < self.capacity:
            rows.append(item)
        else:
            j = int(self.rng.integers(0, n + 1))
            if j < self.capacity:
                rows[j] = item

    def keys(self) -> list[str]:
        return list(self.items)
