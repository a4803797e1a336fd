"""The `vector` codec: any robot whose state and command are named vectors.

Declared angles enter the model as (sin, cos) and their deltas are wrapped; a declared quaternion
group is renormalized after every predicted step (so rollouts stay on the unit sphere); declared
`invariant` entries (typically the position) are left out of the model inputs, so a model learned
in one place holds in another. Targets are next-state deltas. Batched over leading dimensions.
"""

from __future__ import annotations

import torch
from torch import Tensor

from robocl.robots.codec import wrap_angle
from robocl.robots.spec import RobotSpec, spec_from_config


class VectorCodec:
    def __init__(self, state_dim: int, action_dim: int, angle_dims: tuple[int, ...] = (),
                 quaternion_dims: tuple[int, ...] = (), invariant_dims: tuple[int, ...] = ()) -> None:
        if quaternion_dims and len(quaternion_dims) != 4:
            raise ValueError("quaternion_dims: expected 4 indices")
        self.state_dim, self.action_dim = state_dim, action_dim
        self.angle_dims = torch.tensor(angle_dims, dtype=torch.long)
        self.quaternion_dims = torch.tensor(quaternion_dims, dtype=torch.long)
        kept = [i for i in range(state_dim) if i not in invariant_dims and i not in angle_dims]
        self.plain_dims = torch.tensor(kept, dtype=torch.long)
        self.feature_dim = len(kept) + 2 * len(angle_dims)
        self.target_dim = state_dim

    def features(self, state: Tensor) -> Tensor:
        angles = state[..., self.angle_dims]
        return torch.cat([state[..., self.plain_dims], torch.sin(angles), torch.cos(angles)], dim=-1)

    def targets(self, state: Tensor, next_state: Tensor) -> Tensor:
        delta = next_state - state
        if self.angle_dims.numel():
            delta = delta.index_copy(-1, self.angle_dims, wrap_angle(delta[..., self.angle_dims]))
        return delta

    def integrate(self, state: Tensor, target: Tensor) -> Tensor:
        nxt = state + target
        if self.angle_dims.numel():
            nxt = nxt.index_copy(-1, self.angle_dims, wrap_angle(nxt[..., self.angle_dims]))
        if self.quaternion_dims.numel():
            q = nxt[..., self.quaternion_dims]
            nxt = nxt.index_copy(-1, self.quaternion_dims, q / q.norm(dim=-1, keepdim=True).clamp_min(1e-9))
        return nxt


def codec_for(spec: RobotSpec) -> VectorCodec:
    return VectorCodec(spec.state_dim, spec.action_dim, spec.angle_dims, spec.dims(spec.quaternion),
                       spec.dims(spec.invariant))


def vector_codec(robot_cfg: object) -> VectorCodec:
    """Factory named by `robot.codec_factory` for `codec: vector` robots."""
    return codec_for(spec_from_config(robot_cfg))
