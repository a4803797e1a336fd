"""Synaptic intelligence (Zenke et al. 2017): importance from each weight's path integral.

During training, omega += -g * delta_theta after every optimizer step (g: the gradient that
step used). At the end of a task, Omega += omega / (total_change^2 + xi); the penalty is
c * sum Omega (theta - theta_end)^2. Memory is fixed: three tensors per parameter.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from robocl.continual.penalties import quadratic_anchor
from robocl.continual.trainable import TrainableStrategy, common_kwargs, snapshot
from robocl.dynamics.base import DynamicsModel, Transitions


class SI(TrainableStrategy):
    name = "si"

    def __init__(self, model: DynamicsModel, strength: float = 1.0, damping: float = 0.1, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.strength = float(strength)
        self.damping = float(damping)
        params = self.trainable_parameters()
        self.omega = [torch.zeros_like(p) for p in params]       # running path integral (this task)
        self.importance = [torch.zeros_like(p) for p in params]  # Omega, summed over tasks
        self.task_start = snapshot(params)
        self._prev = snapshot(params)
        self.anchor: list[Tensor] | None = None

    def begin_task(self, task_id: int) -> None:
        super().begin_task(task_id)
        self.task_start = snapshot(self.trainable_parameters())
        self._prev = snapshot(self.trainable_parameters())

    @torch.no_grad()
    def after_step(self) -> None:
        for p, prev, w in zip(self.trainable_parameters(), self._prev, self.omega):
            if p.grad is not None:
                w.sub_(p.grad * (p - prev))
            prev.copy_(p)

    def penalty(self) -> Tensor:
        if self.anchor is None:
            return torch.zeros(())
        return self.strength * quadratic_anchor(self.trainable_parameters(), self.anchor, self.importance)

    @torch.no_grad()
    def consolidate(self, data: Transitions) -> None:
        params = self.trainable_parameters()
        for p, start, w, imp in zip(params, self.task_start, self.omega, self.importance):
            imp.add_(torch.relu(w) / ((p - start).pow(2) + self.damping))
            w.zero_()
        self.anchor = snapshot(params)
        self.task_start = snapshot(params)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "omega": self.omega, "importance": self.importance,
                "anchor": self.anchor, "task_start": self.task_start}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.omega, self.importance = state["omega"], state["importance"]
        self.anchor, self.task_start = state.get("anchor"), state["task_start"]
        self._prev = snapshot(self.trainable_parameters())


def from_config(node, model: DynamicsModel, seed: int = 0) -> SI:
    """Factory for `continual=si`."""
    return SI(model, strength=float(node.strength), damping=float(node.get("damping", 0.1)),
              **common_kwargs(node, seed))
