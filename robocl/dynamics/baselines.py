"""Analytic reference models that learned models must beat."""

from __future__ import annotations

import torch
from torch import Tensor

from robocl.dynamics.base import DynamicsModel
from robocl.robots.codec import StateCodec


class ConstantVelocityModel(DynamicsModel):
    """Predicts that the robot keeps its current velocity for one period (ignores the action).

    For the planar codec the target is (v_f dt, v_l dt, r dt, 0, 0, 0); for a generic
    delta codec the caller supplies `velocity_slice` and `position_slice`.
    """

    def __init__(self, codec: StateCodec, dt: float) -> None:
        super().__init__(codec)
        self.dt = dt

    def predict(self, states: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        vel = states[..., 3:6]
        target = torch.cat([vel * self.dt, torch.zeros_like(vel)], dim=-1)
        return self.codec.integrate(states, target), torch.zeros_like(target)
