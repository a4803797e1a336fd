"""Coreset replay: a small fixed-size buffer of past transitions mixed into every batch.

The buffer holds at most `size` transitions in total, split evenly over the tasks seen so
far (older tasks give up samples as new ones arrive), so memory never grows.
"""

from __future__ import annotations

from typing import Any

import torch

from robocl.continual.trainable import TrainableStrategy, common_kwargs
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

    def replay(self, batch: Transitions) -> Transitions:
        if self.memory is None or not len(self.memory):
            return batch
        k = max(1, round(len(batch) * self.replay_fraction))
        idx = torch.randint(len(self.memory), (k,), generator=self.generator)
        return Transitions.concat([batch, self.memory[idx]])

    def consolidate(self, data: Transitions) -> None:
        tasks = sorted(set(self.per_task) | {self.task_id})
        quota = max(1, self.size // len(tasks))
        pick = torch.randperm(len(data), generator=self.generator)[:quota]
        self.per_task[self.task_id] = data[pick]
        self.per_task = {t: d[:quota] for t, d in self.per_task.items()}
        self.memory = Transitions.concat(list(self.per_task.values()))

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "per_task": {t: vars(d) for t, d in self.per_task.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.per_task = {int(t): Transitions(**d) for t, d in state.get("per_task", {}).items()}
        self.memory = Transitions.concat(list(self.per_task.values())) if self.per_task else None


def from_config(node, model: DynamicsModel, seed: int = 0) -> Coreset:
    """Factory for `continual=coreset`."""
    return Coreset(model, size=int(node.size), replay_fraction=float(node.get("replay_fraction", 0.5)),
                   **common_kwargs(node, seed))
