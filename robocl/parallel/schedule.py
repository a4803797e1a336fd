"""How long a set of units takes on W workers: the executor's own schedule, replayed on measured times.

Both executors hand units out in canonical order to whichever worker frees up first (list
scheduling), so replaying that rule on each unit's measured wall time gives the makespan a run
would have with more workers, assuming the same per-core speed and no contention between units
(they share nothing while they run). Fixed costs (starting Ray, building the shared artifacts)
are not included.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence


def makespan(seconds: Sequence[float], workers: int) -> float:
    """Wall time of running `seconds` (in this order) on `workers` workers, each unit to the first free one."""
    if workers < 1:
        raise ValueError("workers must be >= 1")
    free = [0.0] * min(workers, max(1, len(seconds)))
    for s in seconds:
        heapq.heapreplace(free, free[0] + float(s))
    return max(free)


def projection(seconds: Sequence[float], workers: Iterable[int] = (1, 2, 16, 64)) -> dict[str, float]:
    """{workers: projected wall seconds}, plus the lower bound no worker count beats (the longest unit)."""
    out = {str(w): round(makespan(seconds, w), 1) for w in workers}
    out["bound"] = round(max(seconds, default=0.0), 1)
    return out
