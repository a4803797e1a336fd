"""Cross-entropy method trajectory optimizer (as in PETS), batched in torch."""

from __future__ import annotations

import torch
from torch import Tensor

from robocl.planning.base import SamplingPlanner


class CEM(SamplingPlanner):
    """Refits a diagonal Gaussian to the `elite_fraction` lowest-cost sequences each iteration."""

    def __init__(self, *args, elite_fraction: float = 0.1, alpha: float = 0.1, **kwargs) -> None:
        if not 0 < elite_fraction <= 1:
            raise ValueError("elite_fraction must be in (0, 1]")
        self.elite_fraction = elite_fraction
        self.alpha = alpha
        super().__init__(*args, **kwargs)
        self.std = self.sigma.expand(self.horizon, self.action_dim).clone()

    def reset(self) -> None:
        super().reset()
        self.std = self.sigma.expand(self.horizon, self.action_dim).clone()

    @torch.inference_mode()
    def plan(self, state: Tensor) -> Tensor:
        state = state.to(torch.float32)
        std = self.sigma.expand(self.horizon, self.action_dim).clone()
        for _ in range(self.iterations):
            actions = self.sample(self.mean, std)
            cost = self.evaluate(state, actions)
            n_elite = max(2, int(self.population * self.elite_fraction))
            elite = actions[torch.topk(cost, n_elite, largest=False).indices]
            self.mean = self.alpha * self.mean + (1 - self.alpha) * elite.mean(0)
            std = self.alpha * std + (1 - self.alpha) * elite.std(0)
        self.last_cost = cost
        first = self.mean[0].clone()
        self.shift()
        return first

    def update(self, actions: Tensor, cost: Tensor) -> None:  # pragma: no cover - CEM overrides plan
        raise NotImplementedError
