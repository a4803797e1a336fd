"""Codecs of the manipulation robots in the continual sequences (experiment=cl_pusher; the door,
experiment=cl_door, uses the plain `robocl.robots.codec:delta_codec`)."""

from __future__ import annotations

import torch
from torch import Tensor

from robocl.robots.codec import DeltaCodec


class PushCodec(DeltaCodec):
    """Pusher state [finger xy, finger v, puck xy, puck v]: features drop the absolute position
    (the puck relative to the finger and both velocities); targets are plain deltas."""

    def __init__(self) -> None:
        super().__init__(8, 2)
        self.feature_dim = 6

    def features(self, state: Tensor) -> Tensor:
        return torch.cat([state[..., 4:6] - state[..., 0:2], state[..., 2:4], state[..., 6:8]], dim=-1)


def push_codec(robot_cfg: object) -> PushCodec:
    """Codec factory (`robot.codec_factory`) for the pusher."""
    return PushCodec()
