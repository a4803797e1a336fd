"""MPPI for N robots (or N environments) in one call: states (N, S) -> first actions (N, A).

Each robot keeps its own warm start and its own softmin over its own P sampled sequences, so robot
i's plan is what a single-robot MPPI would give it; the N x P rollouts go through the dynamics as one
(N*P, S) batch, so a fleet pays the model's per-call overheads once and its matmuls are N times
taller (pytorch_mppi's `MPPI_Batched` does the same for its planner).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from robocl.planning.base import DynamicsFn, rollout

# cost(states (N, P, H+1, S), actions (N, P, H, A)) -> (N, P): every robot's samples scored against its own goal
BatchedCostFn = Callable[[Tensor, Tensor], Tensor]


class BatchedMPPI:
    """N independent MPPI planners evaluated as one batch (same settings as `robocl.planning.mppi.MPPI`)."""

    def __init__(self, dynamics: DynamicsFn, cost: BatchedCostFn, action_low: Sequence[float],
                 action_high: Sequence[float], robots: int, horizon: int = 5, population: int = 1000,
                 noise_sigma: Sequence[float] | float = 0.5, temperature: float = 1.0, iterations: int = 1,
                 seed: int = 0) -> None:
        if robots < 1 or horizon < 1 or population < 2 or iterations < 1 or temperature <= 0:
            raise ValueError("robots >= 1, horizon >= 1, population >= 2, iterations >= 1, temperature > 0")
        self.dynamics, self.cost = dynamics, cost
        self.low = torch.as_tensor(action_low, dtype=torch.float32)
        self.high = torch.as_tensor(action_high, dtype=torch.float32)
        self.action_dim = self.low.numel()
        self.robots, self.horizon, self.population, self.iterations = robots, horizon, population, iterations
        self.temperature = float(temperature)
        sigma = torch.as_tensor(noise_sigma, dtype=torch.float32)
        self.sigma = sigma.expand(self.action_dim).clone() if sigma.dim() == 0 else sigma
        self.generator = torch.Generator().manual_seed(seed)
        self.reset()

    def reset(self) -> None:
        """Forget every robot's warm start."""
        self.mean = ((self.low + self.high) / 2).expand(self.robots, self.horizon, self.action_dim).clone()

    def sample(self) -> Tensor:
        noise = torch.randn(self.robots, self.population, self.horizon, self.action_dim, generator=self.generator)
        actions = self.mean[:, None] + noise * self.sigma
        actions[:, 0] = self.mean  # each robot's current mean is always evaluated
        return torch.max(torch.min(actions, self.high), self.low)

    @torch.inference_mode()
    def plan(self, states: Tensor) -> Tensor:
        """Optimize every robot's sequence from its state (N, S); returns the first actions (N, A)."""
        n, p = self.robots, self.population
        states = states.to(torch.float32)
        if states.shape[0] != n:
            raise ValueError(f"states: expected {n} rows (one per robot), got {tuple(states.shape)}")
        starts = states.repeat_interleave(p, dim=0)  # (N*P, S): robot i's particles are rows i*P .. i*P+P-1
        for _ in range(self.iterations):
            actions = self.sample()
            flat = rollout(self.dynamics, starts, actions.reshape(n * p, self.horizon, self.action_dim))
            cost = self.cost(flat.reshape(n, p, self.horizon + 1, -1), actions)
            cost = torch.nan_to_num(cost, nan=1e9, posinf=1e9)
            weights = torch.softmax(-(cost - cost.min(dim=1, keepdim=True).values) / self.temperature, dim=1)
            self.mean = torch.einsum("np,npha->nha", weights, actions)
        first = self.mean[:, 0].clone()
        self.mean = torch.cat([self.mean[:, 1:], self.mean[:, -1:]], dim=1)  # warm start: shift by one step
        return first
