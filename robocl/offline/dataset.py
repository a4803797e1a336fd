"""Recorded episodes -> training and validation transitions for `robocl-train`.

Reads through the same sources, topic/column mapping and time alignment as `robocl-eval`
(`readers.open_source` -> `align` -> `transitions`), message by message; only the aligned
transitions are kept, as compact float32 arrays (an hour at 50 Hz is ~10 MB). Validation is held
out by episode (whole episodes, so nothing of a validation drive is seen in training), or, with
a single episode, by time block (its last `val_fraction`): neighbouring transitions of one drive
are nearly identical, so a random split would validate on training data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from robocl.dynamics.base import Transitions
from robocl.offline.readers import AlignStats, Episode, Mapping, align, open_source, transitions


@dataclass
class Segment:
    """Contiguous transitions of one episode (no break inside): k-step errors roll along it."""

    episode: str
    states: np.ndarray  # (L+1, D): states[i] -> states[i+1] under actions[i]
    actions: np.ndarray  # (L, A)
    regimes: list[str | None]

    def __len__(self) -> int:
        return self.actions.shape[0]

    def part(self, start: int, end: int) -> Segment:
        return Segment(self.episode, self.states[start:end + 1], self.actions[start:end], self.regimes[start:end])


@dataclass
class RecordedData:
    segments: list[Segment] = field(default_factory=list)
    stats: dict[str, dict] = field(default_factory=dict)  # per episode: ticks, breaks, transitions

    def __len__(self) -> int:
        return sum(len(s) for s in self.segments)

    def transitions(self) -> Transitions:
        if not self.segments:
            return Transitions(torch.zeros(0, 0), torch.zeros(0, 0), torch.zeros(0, 0))
        t = lambda arrays: torch.as_tensor(np.concatenate(arrays), dtype=torch.float32)  # noqa: E731
        return Transitions(t([s.states[:-1] for s in self.segments]), t([s.actions for s in self.segments]),
                           t([s.states[1:] for s in self.segments]))

    def labels(self) -> list[str | None]:
        return [r for s in self.segments for r in s.regimes]

    def episodes(self) -> list[str]:
        return list(dict.fromkeys(s.episode for s in self.segments))

    def fingerprint(self) -> str:
        """sha256 over the aligned transitions: names the data a model was trained on."""
        digest = hashlib.sha256()
        for s in self.segments:
            digest.update(s.episode.encode())
            digest.update(np.ascontiguousarray(s.states, dtype=np.float32).tobytes())
            digest.update(np.ascontiguousarray(s.actions, dtype=np.float32).tobytes())
        return digest.hexdigest()[:16]


def task_labels(labels: list[str | None], nominal: str) -> list[str]:
    """One task per distinct regime label, unlabeled transitions counting as `nominal`: the nominal
    label first if present, the others in the order they first appear."""
    seen = list(dict.fromkeys(nominal if label is None else label for label in labels))
    return ([nominal] if nominal in seen else []) + [label for label in seen if label != nominal]


def task_ids(data: RecordedData, tasks: list[str], nominal: str) -> torch.Tensor:
    """(N,) int64: each transition's index in `tasks` (unlabeled: `nominal`'s)."""
    index = {label: i for i, label in enumerate(tasks)}
    return torch.as_tensor([index[nominal if label is None else label] for label in data.labels()], dtype=torch.long)


def by_label(segments: list[Segment], nominal: str) -> list[tuple[str, Segment]]:
    """The segments cut where the regime label changes: (label, piece), unlabeled counting as `nominal`."""
    out = []
    for seg in segments:
        labels = [nominal if label is None else label for label in seg.regimes]
        start = 0
        for i in range(1, len(labels) + 1):
            if i == len(labels) or labels[i] != labels[start]:
                out.append((labels[start], seg.part(start, i)))
                start = i
    return out


def read_episode(episode: Episode, mapping: Mapping, limit: int | None = None,
                 on_progress: Callable[[int], None] | None = None) -> tuple[list[Segment], dict]:
    """The contiguous segments of one episode's aligned transitions (at most `limit` transitions)."""
    stats = AlignStats()
    segments: list[Segment] = []
    current: tuple[int, list, list, list] | None = None
    count = 0

    def close() -> None:
        if current is not None and current[2]:
            _, states, actions, regimes = current
            segments.append(Segment(episode.name, np.asarray(states, dtype=np.float32),
                                    np.asarray(actions, dtype=np.float32), regimes))

    for seg, _t, s, a, s2, regime in transitions(align(open_source(episode, mapping).events(), mapping, stats)):
        if limit is not None and count >= limit:
            break
        if current is None or current[0] != seg:
            close()
            current = (seg, [s], [], [])
        current[1].append(s2)
        current[2].append(a)
        current[3].append(regime)
        count += 1
        if on_progress is not None and count % 2000 == 0:
            on_progress(count)
    close()
    info = {"transitions": count, "segments": len(segments), "ticks": stats.ticks,
            "ticks_without_state": stats.missing_state, "ticks_without_command": stats.missing_command,
            "out_of_order_messages": stats.out_of_order}
    return segments, info


def read_recorded(episodes: list[Episode], mapping: Mapping, limit: int | None = None,
                  on_progress: Callable[[str, int], None] | None = None) -> RecordedData:
    data = RecordedData()
    for ep in episodes:
        report = (lambda n, name=ep.name: on_progress(name, n)) if on_progress is not None else None
        segments, info = read_episode(ep, mapping, limit, report)
        data.segments.extend(segments)
        data.stats[ep.name] = info
    return data


def split_validation(data: RecordedData, val_fraction: float) -> tuple[RecordedData, RecordedData, str]:
    """(train, val, how): whole episodes held out when there are several, else the last time block.

    Validation episodes are spread over the sorted episode list (every k-th), so a log recorded in
    sessions does not validate only on the last session."""
    names = data.episodes()
    if len(names) >= 2:
        n_val = min(len(names) - 1, max(1, int(round(val_fraction * len(names)))))
        picks = {names[int(i)] for i in np.linspace(len(names) - 1, 0, n_val, endpoint=n_val > 1).round()}
        train = [s for s in data.segments if s.episode not in picks]
        val = [s for s in data.segments if s.episode in picks]
        how = f"by episode: {len(names) - len(picks)} train, {len(picks)} validation ({', '.join(sorted(picks))})"
        return RecordedData(train, data.stats), RecordedData(val, data.stats), how
    total = len(data)
    cut = total - max(1, int(round(val_fraction * total)))
    train, val, seen = [], [], 0
    for s in data.segments:
        lo, hi = seen, seen + len(s)
        if hi <= cut:
            train.append(s)
        elif lo >= cut:
            val.append(s)
        else:
            train.append(s.part(0, cut - lo))
            val.append(s.part(cut - lo, len(s)))
        seen = hi
    how = f"by time block: the last {val_fraction:.0%} of episode {names[0] if names else '?'}"
    return RecordedData(train, data.stats), RecordedData(val, data.stats), how
