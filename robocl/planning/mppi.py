"""Model Predictive Path Integral control (Williams et al. 2017), batched in torch."""

from __future__ import annotations

import torch
from torch import Tensor

from robocl.planning.base import SamplingPlanner


class MPPI(SamplingPlanner):
    """Information-theoretic MPPI: the new mean is the softmin(cost / temperature)-weighted average.

    `temperature` sets how greedy the update is; costs are shifted by their minimum first so
    the weights are numerically stable whatever the cost scale.
    """

    def __init__(self, *args, temperature: float = 1.0, **kwargs) -> None:
        if temperature <= 0:
            raise ValueError("temperature must be > 0")
        self.temperature = temperature
        super().__init__(*args, **kwargs)

    def update(self, actions: Tensor, cost: Tensor) -> None:
        weights = torch.softmax(-(cost - cost.min()) / self.temperature, dim=0)
        self.mean = torch.einsum("p,pha->ha", weights, actions)
