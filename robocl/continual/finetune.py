"""Fine-tuning: train each new task from where the last one left off (the lower bound)."""

from __future__ import annotations

from robocl.continual.trainable import TrainableStrategy, common_kwargs
from robocl.dynamics.base import DynamicsModel


class Finetune(TrainableStrategy):
    """No protection against forgetting; every other strategy should beat it on old tasks."""

    name = "finetune"


def from_config(node, model: DynamicsModel, seed: int = 0) -> Finetune:
    """Factory for `continual=finetune`."""
    return Finetune(model, **common_kwargs(node, seed))
