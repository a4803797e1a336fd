"""Vectorized trajectory costs for planners."""

from __future__ import annotations

import torch
from torch import Tensor


class WaypointCost:
    """Distance of predicted positions to the active waypoint, plus a small action-rate penalty.

    `goal` is set by the mission as waypoints are reached; positions are state[..., :pos_dims].
    A heavier terminal term pulls the end of the horizon onto the waypoint.
    """

    def __init__(
        self,
        pos_dims: int = 2,
        terminal_weight: float = 2.0,
        action_rate_weight: float = 0.02,
        reverse_weight: float = 0.0,
    ) -> None:
        self.pos_dims = pos_dims
        self.terminal_weight = terminal_weight
        self.action_rate_weight = action_rate_weight
        self.reverse_weight = reverse_weight
        self.goal = torch.zeros(pos_dims)

    def set_goal(self, goal: Tensor) -> None:
        self.goal = torch.as_tensor(goal, dtype=torch.float32)[: self.pos_dims]

    def __call__(self, states: Tensor, actions: Tensor) -> Tensor:
        dist = torch.linalg.vector_norm(states[:, 1:, : self.pos_dims] - self.goal, dim=-1)
        cost = dist.sum(1) + self.terminal_weight * dist[:, -1]
        if self.action_rate_weight and actions.shape[1] > 1:
            cost = cost + self.action_rate_weight * (actions[:, 1:] - actions[:, :-1]).pow(2).sum((1, 2))
        if self.reverse_weight:
            cost = cost + self.reverse_weight * torch.relu(-actions[..., 0]).sum(1)
        return cost


class QuadraticGoalCost:
    """Quadratic state-error cost toward a goal state, for toy systems and tests."""

    def __init__(self, goal: Tensor, state_weights: Tensor, action_weight: float = 0.01) -> None:
        self.goal = goal
        self.state_weights = state_weights
        self.action_weight = action_weight

    def __call__(self, states: Tensor, actions: Tensor) -> Tensor:
        err = (states[:, 1:] - self.goal) ** 2 * self.state_weights
        return err.sum((1, 2)) + self.action_weight * actions.pow(2).sum((1, 2))
