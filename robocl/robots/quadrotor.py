"""Quadrotor state codec and exploration shaping for learned-model MPC.

State (12,): [x, y, z, vx, vy, vz, roll, pitch, yaw, p, q, r] (world ENU position/velocity,
ZYX Euler angles, body rates) — the observation of `robocl_envs.quadrotor.QuadrotorEnv`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from robocl.errors import UsageError
from robocl.robots.codec import DeltaCodec, wrap_angle


class QuadrotorCodec:
    """Translation-invariant features (no position); targets are per-period deltas.

    Yaw enters as (sin, cos) so the model sees no seam at ±pi; angle deltas are wrapped.
    """

    state_dim = 12
    action_dim = 4
    feature_dim = 10
    target_dim = 12

    def features(self, state: Tensor) -> Tensor:
        yaw = state[..., 8:9]
        return torch.cat([state[..., 3:8], torch.sin(yaw), torch.cos(yaw), state[..., 9:12]], dim=-1)

    def targets(self, state: Tensor, next_state: Tensor) -> Tensor:
        delta = next_state - state
        return torch.cat([delta[..., :6], wrap_angle(delta[..., 6:9]), delta[..., 9:12]], dim=-1)

    def integrate(self, state: Tensor, target: Tensor) -> Tensor:
        nxt = state + target
        return torch.cat([nxt[..., :6], wrap_angle(nxt[..., 6:9]), nxt[..., 9:12]], dim=-1)


def quadrotor_codec(robot_cfg: object) -> QuadrotorCodec:
    """Factory named by `robot.codec_factory` in configs/robot/quadrotor.yaml."""
    return QuadrotorCodec()


class QuadCodec(DeltaCodec):
    """The continual sequence's quadrotor codec (experiment=cl_quad): state [pos, vel, roll/pitch/yaw, body
    rates]; features drop the position (translation invariance), the angles enter as they are; targets are
    deltas with the yaw change wrapped."""

    def __init__(self) -> None:
        super().__init__(12, 4)
        self.feature_dim = 9

    def features(self, state: Tensor) -> Tensor:
        return state[..., 3:12]

    def targets(self, state: Tensor, next_state: Tensor) -> Tensor:
        d = next_state - state
        return torch.cat([d[..., :8], wrap_angle(d[..., 8:9]), d[..., 9:]], dim=-1)

    def integrate(self, state: Tensor, target: Tensor) -> Tensor:
        nxt = state + target
        return torch.cat([nxt[..., :8], wrap_angle(nxt[..., 8:9]), nxt[..., 9:]], dim=-1)


def quad_codec(robot_cfg: object) -> QuadCodec:
    """Codec factory (`robot.codec_factory`) for the quadrotor in the continual sequence."""
    return QuadCodec()


def hold_altitude(target_z: float = 1.2, gain: float = 0.8, box: float = 3.0):
    """Exploration shaping: random velocity setpoints, pulled back toward a safe altitude and the origin."""

    def shape(obs: np.ndarray, action: np.ndarray) -> np.ndarray:
        out = np.array(action, dtype=float)
        out[2] = 0.6 * out[2] + gain * (target_z - obs[2])
        out[:2] = out[:2] - 0.3 * np.clip(obs[:2] / box, -1, 1)
        out[3] *= 0.3  # little yaw: the tasks hold heading
        return out

    return shape


QUAD_PHYSICS_KEYS = ("payload_frac", "motor_efficiency", "wind", "gust_std")


def regime_params(physics: Mapping[str, Any] | None, key: str = "task.physics") -> Any:
    """`task.physics` as the env's `QuadParams` (payload, per-motor efficiency, wind, gusts); a bad
    key or value is one line naming `key`. Shared by robocl-run's quadrotor experiments and robocl-ros-sim."""
    from robocl_envs.quadrotor import QuadParams

    try:
        return QuadParams(**dict(physics or {}))
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{key}: {exc}; accepted keys: {', '.join(QUAD_PHYSICS_KEYS)}") from None
