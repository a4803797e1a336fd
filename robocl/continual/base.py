"""The continual-learning strategy interface: how a dynamics model keeps learning."""

from __future__ import annotations

from typing import Any

from robocl.dynamics.base import DynamicsModel, Transitions


class ContinualStrategy:
    """Owns how a model learns across tasks (regimes): offline per task and online per step.

    The Controller calls `observe` after every executed transition; experiments call
    `begin_task` / `learn_task` / `end_task` when they know task boundaries.
    """

    name = "frozen"

    def __init__(self, model: DynamicsModel) -> None:
        self.model = model
        self.task_id = 0

    def begin_task(self, task_id: int) -> None:
        self.task_id = task_id

    def learn_task(self, data: Transitions) -> None:
        """Offline learning of the current task from its data (default: nothing)."""

    def observe(self, transition: Transitions) -> None:
        """Online learning from the transition just executed (default: frozen model)."""

    def end_task(self) -> None:
        """Consolidate the finished task (e.g. store regularization targets)."""

    def state_dict(self) -> dict[str, Any]:
        return {"task_id": self.task_id, "model": self.model.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.task_id = state["task_id"]
        self.model.load_state_dict(state["model"])
