"""Shared machinery of sampling-based trajectory optimizers (MPPI, CEM).

Everything is batched: a population of P action sequences (P, H, A) is rolled out through
the dynamics in H batched calls and scored by one vectorized cost call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

# dynamics(states (P, S), actions (P, A)) -> next states (P, S)
DynamicsFn = Callable[[Tensor, Tensor], Tensor]
# cost(states (P, H+1, S), actions (P, H, A)) -> cost (P,)
CostFn = Callable[[Tensor, Tensor], Tensor]


def rollout(dynamics: DynamicsFn, state: Tensor, actions: Tensor) -> Tensor:
    """Roll `actions` (P, H, A) forward from one state (S,) or a batch (P, S): -> (P, H+1, S)."""
    p, h, _ = actions.shape
    s = state.expand(p, state.shape[-1]) if state.dim() == 1 else state
    states = [s]
    for t in range(h):
        s = dynamics(s, actions[:, t])
        states.append(s)
    return torch.stack(states, dim=1)


class SamplingPlanner:
    """Receding-horizon planner over a Gaussian action distribution with warm start."""

    def __init__(
        self,
        dynamics: DynamicsFn,
        cost: CostFn,
        action_low: Sequence[float],
        action_high: Sequence[float],
        horizon: int = 5,
        population: int = 1000,
        iterations: int = 1,
        noise_sigma: Sequence[float] | float = 0.5,
        seed: int = 0,
        reset_particles: Callable[[], None] | None = None,
    ) -> None:
        if horizon < 1 or population < 2 or iterations < 1:
            raise ValueError("horizon >= 1, population >= 2 and iterations >= 1 are required")
        self.dynamics = dynamics
        self.cost = cost
        self.low = torch.as_tensor(action_low, dtype=torch.float32)
        self.high = torch.as_tensor(action_high, dtype=torch.float32)
        self.action_dim = self.low.numel()
        self.horizon = horizon
        self.population = population
        self.iterations = iterations
        sigma = torch.as_tensor(noise_sigma, dtype=torch.float32)
        self.sigma = sigma.expand(self.action_dim).clone() if sigma.dim() == 0 else sigma
        self.generator = torch.Generator().manual_seed(seed)
        self.reset_particles = reset_particles or (lambda: None)
        self.mean = torch.zeros(horizon, self.action_dim)
        self.last_cost: Tensor | None = None
        # sampled sequences with a finite cost in the last `plan` (fewest over its iterations); 0: the model's
        # predictions were not finite anywhere, so the plan is an average of noise (the Controller refuses it)
        self.finite_rollouts: int | None = None
        self._finite = 0
        self.reset()

    def reset(self) -> None:
        """Forget the warm start (new episode or new goal far away)."""
        self.mean = ((self.low + self.high) / 2).expand(self.horizon, self.action_dim).clone()

    def set_population(self, population: int) -> int:
        """Change the number of sampled sequences from the next `plan` on (a real-time caller shrinking its
        compute budget, or restoring it). The warm start (the mean, and CEM's spread) is per horizon step,
        not per sample, so it carries over unchanged. Returns the population now in force."""
        if isinstance(population, bool) or int(population) != population or population < 2:
            raise ValueError(f"population must be an integer >= 2, got {population!r}")
        self.population = int(population)
        return self.population

    def shift(self) -> None:
        """Warm start: drop the executed first action, repeat the last one."""
        self.mean = torch.cat([self.mean[1:], self.mean[-1:]], dim=0)

    def sample(self, mean: Tensor, std: Tensor) -> Tensor:
        noise = torch.randn(self.population, self.horizon, self.action_dim, generator=self.generator)
        actions = mean + noise * std
        actions[0] = mean  # always evaluate the current mean (keeps MPPI from losing a good plan)
        return torch.max(torch.min(actions, self.high), self.low)

    def evaluate(self, state: Tensor, actions: Tensor) -> Tensor:
        self.reset_particles()
        states = rollout(self.dynamics, state, actions)
        cost = self.cost(states, actions)
        self._finite = int(torch.isfinite(cost).sum())
        return torch.nan_to_num(cost, nan=1e9, posinf=1e9)

    def update(self, actions: Tensor, cost: Tensor) -> None:
        raise NotImplementedError

    @torch.inference_mode()
    def plan(self, state: Tensor) -> Tensor:
        """Optimize the action sequence from `state` and return the first action (A,)."""
        state = state.to(torch.float32)
        finite = self.population
        for _ in range(self.iterations):
            actions = self.sample(self.mean, self.sigma)
            cost = self.evaluate(state, actions)
            finite = min(finite, self._finite)
            self.update(actions, cost)
        self.last_cost = cost
        self.finite_rollouts = finite
        first = self.mean[0].clone()
        self.shift()
        return first
