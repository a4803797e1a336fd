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

    def set_goals(self, goals: Tensor) -> None:
        """One goal per robot (N, >= pos_dims), for a fleet planned at once (robocl.planning.batched)."""
        self.goal = torch.as_tensor(goals, dtype=torch.float32)[:, None, None, : self.pos_dims]

    def __call__(self, states: Tensor, actions: Tensor) -> Tensor:
        """states (..., H+1, S), actions (..., H, A) -> (...): one robot's (P, ...) samples or a fleet's (N, P, ...)."""
        dist = torch.linalg.vector_norm(states[..., 1:, : self.pos_dims] - self.goal, dim=-1)
        cost = dist.sum(-1) + self.terminal_weight * dist[..., -1]
        if self.action_rate_weight and actions.shape[-2] > 1:
            cost = cost + self.action_rate_weight * (actions[..., 1:, :] - actions[..., :-1, :]).pow(2).sum((-2, -1))
        if self.reverse_weight:
            cost = cost + self.reverse_weight * torch.relu(-actions[..., 0]).sum(-1)
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


class PushCost:
    """Puck-to-goal distance (heavier at the end) plus the finger's distance to the point just
    behind the puck on the goal line, which is where a push toward the goal starts."""

    def __init__(self, behind: float = 0.055, approach_weight: float = 0.5, terminal_weight: float = 2.0) -> None:
        self.goal = torch.zeros(2)
        self.behind = behind
        self.approach_weight = approach_weight
        self.terminal_weight = terminal_weight

    def set_goal(self, goal: Tensor) -> None:
        self.goal = torch.as_tensor(goal, dtype=torch.float32)[:2]

    def __call__(self, states: Tensor, actions: Tensor) -> Tensor:
        finger, puck = states[:, 1:, 0:2], states[:, 1:, 4:6]
        to_goal = self.goal - puck
        dist = torch.linalg.vector_norm(to_goal, dim=-1)
        behind = puck - self.behind * to_goal / dist.clamp_min(1e-6)[..., None]
        approach = torch.linalg.vector_norm(finger - behind, dim=-1)
        return dist.sum(1) + self.terminal_weight * dist[:, -1] + self.approach_weight * approach.sum(1)


class DoorCost:
    """How far the leaf is short of the goal angle, plus the finger's distance to a push point on
    the leaf's -y face (at 60 % of the nominal width: the planner does not know the true size)."""

    def __init__(self, width: float = 0.30, approach_weight: float = 0.5, terminal_weight: float = 2.0) -> None:
        self.goal = torch.ones(1)
        self.width = width
        self.approach_weight = approach_weight
        self.terminal_weight = terminal_weight

    def set_goal(self, goal: Tensor) -> None:
        self.goal = torch.as_tensor(goal, dtype=torch.float32).reshape(-1)[:1]

    def __call__(self, states: Tensor, actions: Tensor) -> Tensor:
        angle, finger = states[:, 1:, 4], states[:, 1:, 0:2]
        short = torch.relu(self.goal[0] - angle)
        c, s = torch.cos(angle), torch.sin(angle)
        r = 0.6 * self.width
        point = torch.stack([r * c + 0.03 * s, r * s - 0.03 * c], dim=-1)
        approach = torch.linalg.vector_norm(finger - point, dim=-1)
        return short.sum(1) + self.terminal_weight * short[:, -1] + self.approach_weight * approach.sum(1)
