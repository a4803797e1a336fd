"""Multitask: joint training on all data seen so far (the upper bound every method is measured to).

It keeps every transition, which is exactly what a continual learner may not do; it exists
to say how good a single network can be on the whole sequence.
"""

from __future__ import annotations

from typing import Any

import torch

from robocl.continual.trainable import TrainableStrategy, common_kwargs
from robocl.dynamics.base import DynamicsModel, Transitions


class Multitask(TrainableStrategy):
    name = "multitask"

    def __init__(self, model: DynamicsModel, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.seen: list[Transitions] = []
        self._everything: Transitions | None = None

    def learn_task(self, data: Transitions) -> None:
        """Train on the union of all tasks so far (same epochs, so more steps as tasks accumulate)."""
        super().learn_task(Transitions.concat([*self.seen, data]))
        self._task_data = data

    def consolidate(self, data: Transitions) -> None:
        self.seen.append(data)
        self._everything = Transitions.concat(self.seen)

    def replay(self, batch: Transitions) -> Transitions:
        """Online: mix recent transitions with an equal number drawn from everything seen."""
        if not self.online or self._everything is None:
            return batch
        idx = torch.randint(len(self._everything), (len(batch),), generator=self.generator)
        return Transitions.concat([batch, self._everything[idx]])

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "seen": [vars(d) for d in self.seen]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.seen = [Transitions(**d) for d in state.get("seen", [])]
        self._everything = Transitions.concat(self.seen) if self.seen else None


def from_config(node, model: DynamicsModel, seed: int = 0) -> Multitask:
    """Factory for `continual=multitask`."""
    return Multitask(model, **common_kwargs(node, seed))
