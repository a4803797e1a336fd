"""Time-varying reference tracking cost (quadrotor trajectories)."""

from __future__ import annotations

import torch
from torch import Tensor


class ReferenceTrackingCost:
    """Squared position error to the reference at each horizon step, plus attitude/yaw and action terms.

    The mission calls `set_reference(positions (H, 3), velocities (H, 3))` every control step with
    the reference at the times the planner's rollout states will be reached.
    """

    def __init__(self, horizon: int, velocity_weight: float = 0.1, yaw_weight: float = 0.5,
                 tilt_weight: float = 0.05, action_rate_weight: float = 0.05, terminal_weight: float = 2.0) -> None:
        self.ref_pos = torch.zeros(horizon, 3)
        self.ref_vel = torch.zeros(horizon, 3)
        self.velocity_weight = velocity_weight
        self.yaw_weight = yaw_weight
        self.tilt_weight = tilt_weight
        self.action_rate_weight = action_rate_weight
        self.terminal_weight = terminal_weight

    def set_reference(self, positions: Tensor, velocities: Tensor) -> None:
        self.ref_pos = torch.as_tensor(positions, dtype=torch.float32)
        self.ref_vel = torch.as_tensor(velocities, dtype=torch.float32)

    def __call__(self, states: Tensor, actions: Tensor) -> Tensor:
        future = states[:, 1:]
        pos_err = (future[..., :3] - self.ref_pos).pow(2).sum(-1)
        vel_err = (future[..., 3:6] - self.ref_vel).pow(2).sum(-1)
        cost = pos_err.sum(1) + self.terminal_weight * pos_err[:, -1] + self.velocity_weight * vel_err.sum(1)
        cost = cost + self.yaw_weight * future[..., 8].pow(2).sum(1)
        cost = cost + self.tilt_weight * future[..., 6:8].pow(2).sum((1, 2))
        if self.action_rate_weight and actions.shape[1] > 1:
            cost = cost + self.action_rate_weight * (actions[:, 1:] - actions[:, :-1]).pow(2).sum((1, 2))
        return cost
