"""Single: one model per task, each trained from the same initial weights (HyperCRL's `single`).

No task can disturb another's model and none transfers to the next: the no-interference reference
(forgetting zero by construction) at the cost of a whole model per task. Task j is evaluated on its
own model; a task not learned yet on the model being trained.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from torch import Tensor

from robocl.continual.trainable import TrainableStrategy, common_kwargs
from robocl.dynamics.base import DynamicsModel, Transitions


def _state(model: DynamicsModel) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class Single(TrainableStrategy):
    name = "single"

    def __init__(self, model: DynamicsModel, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.initial: dict[str, Tensor] | None = None  # taken when the first task begins (normalizers fitted)
        self.models: dict[int, dict[str, Tensor]] = {}  # finished tasks' weights

    def begin_task(self, task_id: int) -> None:
        if self.initial is None:
            self.initial = _state(self.model)
        if task_id != self.task_id:
            if self.task_id in self.learned_tasks:
                self.models[self.task_id] = _state(self.model)
            self.model.load_state_dict(self.models.get(task_id, self.initial))
        super().begin_task(task_id)

    @property
    def models_kept(self) -> int:
        """Whole models held: one per finished task plus the one in training."""
        return len(self.models) + 1

    @contextmanager
    def evaluating(self, task_id: int, data: Transitions | None = None) -> Iterator[None]:
        """Task j on its own model (the current task, and a task not learned yet: the model in training)."""
        if task_id == self.task_id or task_id not in self.models:
            yield
            return
        current = _state(self.model)
        self.model.load_state_dict(self.models[task_id])
        try:
            yield
        finally:
            self.model.load_state_dict(current)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "initial": self.initial, "models": dict(self.models)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.initial = state.get("initial")
        self.models = {int(t): m for t, m in state.get("models", {}).items()}


def from_config(node, model: DynamicsModel, seed: int = 0) -> Single:
    """Factory for `continual=single`."""
    return Single(model, **common_kwargs(node, seed))
