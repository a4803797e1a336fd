"""L2 to the previous task's weights: the simple rehearsal-free baseline that is hard to beat."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from robocl.continual.penalties import quadratic_anchor
from robocl.continual.trainable import TrainableStrategy, common_kwargs, snapshot
from robocl.dynamics.base import DynamicsModel, Transitions


class L2(TrainableStrategy):
    """penalty = strength * sum (theta - theta_prev)^2, theta_prev = weights after the last task."""

    name = "l2"

    def __init__(self, model: DynamicsModel, strength: float = 1.0, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.strength = float(strength)
        self.anchor: list[Tensor] | None = None

    def penalty(self) -> Tensor:
        if self.anchor is None:
            return torch.zeros(())
        return self.strength * quadratic_anchor(self.trainable_parameters(), self.anchor)

    def consolidate(self, data: Transitions) -> None:
        self.anchor = snapshot(self.trainable_parameters())

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "anchor": self.anchor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.anchor = state.get("anchor")


def from_config(node, model: DynamicsModel, seed: int = 0) -> L2:
    """Factory for `continual=l2`."""
    return L2(model, strength=float(node.strength), **common_kwargs(node, seed))
