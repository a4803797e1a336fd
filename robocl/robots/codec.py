"""State codecs: how a robot's raw state maps to what a dynamics model learns.

A learned model generalizes far better when it sees pose-invariant inputs and predicts
body-frame deltas (a UGV turning left at (0, 0) and at (40, 12) is the same physics).
The codec owns that mapping so models, planners and learners stay robot-agnostic.
All methods are batched over leading dimensions and run in torch.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import torch
from torch import Tensor


def wrap_angle(angle: Tensor) -> Tensor:
    """Wrap radians to [-pi, pi)."""
    return torch.remainder(angle + math.pi, 2 * math.pi) - math.pi


class StateCodec(Protocol):
    """Maps raw states to model features and learning targets, and back."""

    state_dim: int
    action_dim: int
    feature_dim: int
    target_dim: int

    def features(self, state: Tensor) -> Tensor:
        """Model input features of a state, shape (..., feature_dim)."""

    def targets(self, state: Tensor, next_state: Tensor) -> Tensor:
        """What the model regresses for a transition, shape (..., target_dim)."""

    def integrate(self, state: Tensor, target: Tensor) -> Tensor:
        """The next state implied by a predicted target (inverse of `targets`)."""


class DeltaCodec:
    """Generic codec: features are the full state, targets are plain state deltas."""

    def __init__(self, state_dim: int, action_dim: int) -> None:
        self.state_dim = self.feature_dim = self.target_dim = state_dim
        self.action_dim = action_dim

    def features(self, state: Tensor) -> Tensor:
        return state

    def targets(self, state: Tensor, next_state: Tensor) -> Tensor:
        return next_state - state

    def integrate(self, state: Tensor, target: Tensor) -> Tensor:
        return state + target


class PlanarBodyCodec:
    """Codec for planar ground robots with state [x, y, yaw, v_forward, v_lateral, yaw_rate].

    Features drop the world pose (translation/rotation invariance); targets are the
    body-frame displacement (dx, dy), the wrapped yaw change, and velocity changes.
    """

    state_dim = 6
    action_dim = 2
    feature_dim = 3
    target_dim = 6

    def features(self, state: Tensor) -> Tensor:
        return state[..., 3:6]

    def targets(self, state: Tensor, next_state: Tensor) -> Tensor:
        yaw = state[..., 2]
        dx = next_state[..., 0] - state[..., 0]
        dy = next_state[..., 1] - state[..., 1]
        c, s = torch.cos(yaw), torch.sin(yaw)
        body_dx = c * dx + s * dy
        body_dy = -s * dx + c * dy
        dyaw = wrap_angle(next_state[..., 2] - yaw)
        dvel = next_state[..., 3:6] - state[..., 3:6]
        return torch.cat([body_dx[..., None], body_dy[..., None], dyaw[..., None], dvel], dim=-1)

    def integrate(self, state: Tensor, target: Tensor) -> Tensor:
        yaw = state[..., 2]
        c, s = torch.cos(yaw), torch.sin(yaw)
        x = state[..., 0] + c * target[..., 0] - s * target[..., 1]
        y = state[..., 1] + s * target[..., 0] + c * target[..., 1]
        new_yaw = wrap_angle(yaw + target[..., 2])
        vel = state[..., 3:6] + target[..., 3:6]
        return torch.cat([x[..., None], y[..., None], new_yaw[..., None], vel], dim=-1)


def planar_codec(robot_cfg: object) -> PlanarBodyCodec:
    """Factory named by `robot.codec_factory` for planar ground robots."""
    return PlanarBodyCodec()


def delta_codec(robot_cfg: Any) -> DeltaCodec:
    """Codec factory for robots whose model sees the whole state and predicts plain deltas (door)."""
    return DeltaCodec(int(robot_cfg.state_dim), int(robot_cfg.action_dim))
