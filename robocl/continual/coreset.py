"""Coreset replay: a small fixed-size buffer of past transitions mixed into every batch.

The buffer holds at most `size` transitions in total, split evenly over the tasks seen so
far (older tasks give up samples as new ones arrive), so memory never grows.

On a task-conditioned model (the hypernetwork, `model: hypernet`) each replayed transition trains
its own task's embedding, as `multitask` does with all the data: replay can then keep regimes whose
responses differ (gains (-1, 1) against nominal) apart instead of averaging them. On a plain
network (`coreset_noid`, and online in robocl-run) the buffer is mixed into one shared model.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor

from robocl.continual.trainable import TrainableStrategy, common_kwargs, keep_share, on_task_embedding, takes_task_id
from robocl.dynamics.base import DynamicsModel, Transitions


class Coreset(TrainableStrategy):
    name = "coreset"

    def __init__(self, model: DynamicsModel, size: int = 200, replay_fraction: float = 0.5, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        if size < 1 or not 0.0 < replay_fraction <= 1.0:
            raise ValueError("coreset size must be >= 1 and replay_fraction in (0, 1]")
        self.size = int(size)
        self.replay_fraction = float(replay_fraction)
        self.per_task: dict[int, Transitions] = {}
        self.memory: Transitions | None = None
        self.memory_ids: Tensor | None = None  # each memory transition's task
        self.with_task_id = takes_task_id(model)
        self.name = "coreset" if self.with_task_id else "coreset_noid"

    def begin_task(self, task_id: int) -> None:
        super().begin_task(task_id)
        if self.with_task_id:
            self.model.set_task(task_id)

    def _replayed(self, n: int) -> tuple[Transitions, Tensor] | None:
        """round(n * replay_fraction) memory transitions (at least one) and their tasks, or None before any."""
        if self.memory is None or not len(self.memory):
            return None
        k = max(1, round(n * self.replay_fraction))
        idx = torch.randint(len(self.memory), (k,), generator=self.generator)
        return self.memory[idx], self.memory_ids[idx]

    def replay(self, batch: Transitions) -> Transitions:
        picked = self._replayed(len(batch))
        return batch if picked is None else Transitions.concat([batch, picked[0]])

    def training_loss(self, batch: Transitions, *extra: Tensor) -> Tensor:
        if not self.with_task_id:
            return super().training_loss(batch)
        ids = torch.full((len(batch),), self.task_id, dtype=torch.long)
        picked = self._replayed(len(batch))
        if picked is not None:
            batch, ids = Transitions.concat([batch, picked[0]]), torch.cat([ids, picked[1]])
        return self.model.multitask_loss(batch, ids) + self.penalty()

    def consolidate(self, data: Transitions) -> None:
        self.per_task = keep_share(self.per_task, self.task_id, data, self.size, self.generator)
        self._rebuild_memory()

    def _rebuild_memory(self) -> None:
        self.memory = Transitions.concat(list(self.per_task.values())) if self.per_task else None
        self.memory_ids = (torch.cat([torch.full((len(d),), t, dtype=torch.long) for t, d in self.per_task.items()])
                           if self.per_task else None)

    @contextmanager
    def evaluating(self, task_id: int, data: Transitions | None = None) -> Iterator[None]:
        """With task ids: task j's embedding (a task not learned yet: the latest one in the buffer)."""
        if not self.with_task_id:
            yield
            return
        with on_task_embedding(self.model, task_id, sorted(self.per_task)):
            yield

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "per_task": {t: vars(d) for t, d in self.per_task.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.per_task = {int(t): Transitions(**d) for t, d in state.get("per_task", {}).items()}
        self._rebuild_memory()


def from_config(node, model: DynamicsModel, seed: int = 0) -> Coreset:
    """Factory for `continual=coreset` (and `coreset_noid`: the same strategy on a plain network)."""
    return Coreset(model, size=int(node.size), replay_fraction=float(node.get("replay_fraction", 0.5)),
                   **common_kwargs(node, seed))
