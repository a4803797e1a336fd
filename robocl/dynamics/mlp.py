"""A single Gaussian MLP dynamics model, written so its weights can also come from elsewhere.

The forward pass is a pure function of a list of weight tensors (`TargetSpec` describes
their shapes). `GaussianMLP` owns those tensors as parameters; `HyperNetwork` generates
them from a task embedding. Both call the very same functions, so a hypernetwork with
cached weights plans exactly as fast as this plain MLP of the same size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robocl.dynamics.base import DynamicsModel, Transitions
from robocl.robots.codec import StateCodec

MAX_LOGVAR = 0.5
MIN_LOGVAR = -10.0


@dataclass(frozen=True)
class TargetSpec:
    """Shapes of a Gaussian MLP: per layer W (in, out), b (out,), then max/min log-variance (D,).

    The head outputs 2*D values (mean, raw log-variance); log-variance bounds are
    soft-clamped as in Chua et al. 2018.
    """

    in_dim: int
    target_dim: int
    hidden_size: int
    hidden_layers: int

    @property
    def layer_dims(self) -> list[tuple[int, int]]:
        dims = [self.in_dim] + [self.hidden_size] * self.hidden_layers + [2 * self.target_dim]
        return list(zip(dims[:-1], dims[1:]))

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        out: list[tuple[int, ...]] = []
        for a, b in self.layer_dims:
            out += [(a, b), (b,)]
        return out + [(self.target_dim,), (self.target_dim,)]

    @property
    def numel(self) -> int:
        return sum(math.prod(s) for s in self.shapes)

    def init_offset_scale(self) -> tuple[Tensor, Tensor]:
        """Per-element (offset, scale) so that offset + scale * N(0, 1) is a sensible initialization.

        Weights and biases get std 1/sqrt(3 fan_in) (PyTorch's default uniform init has that
        std); log-variance bounds start at their usual values and move slowly.
        """
        offsets, scales = [], []
        for a, b in self.layer_dims:
            std = 1.0 / math.sqrt(3 * a)
            offsets += [torch.zeros(a * b), torch.zeros(b)]
            scales += [torch.full((a * b,), std), torch.full((b,), std)]
        d = self.target_dim
        offsets += [torch.full((d,), MAX_LOGVAR), torch.full((d,), MIN_LOGVAR)]
        scales += [torch.full((d,), 0.1), torch.full((d,), 0.1)]
        return torch.cat(offsets), torch.cat(scales)

    def split(self, flat: Tensor) -> list[Tensor]:
        """A flat vector (numel,) into the weight list, as views."""
        parts = torch.split(flat, [math.prod(s) for s in self.shapes])
        return [p.view(s) for p, s in zip(parts, self.shapes)]


def _bound_logvar(raw: Tensor, max_logvar: Tensor, min_logvar: Tensor) -> Tensor:
    logvar = max_logvar - F.softplus(max_logvar - raw)
    return min_logvar + F.softplus(logvar - min_logvar)


def gaussian_mlp_forward(x: Tensor, weights: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """(mean, bounded log-variance) of a Gaussian MLP given its weight list (see TargetSpec)."""
    *layers, max_logvar, min_logvar = weights
    n = len(layers) // 2
    for i in range(n - 1):
        x = F.silu(torch.addmm(layers[2 * i + 1], x, layers[2 * i]) if x.dim() == 2
                   else x @ layers[2 * i] + layers[2 * i + 1])
    out = x @ layers[-2] + layers[-1]
    mean, raw = out.chunk(2, dim=-1)
    return mean, _bound_logvar(raw, max_logvar, min_logvar)


def gaussian_mlp_mean(x: Tensor, weights: Sequence[Tensor]) -> Tensor:
    """Planning hot path: mean only (the log-variance half of the head is skipped), in-place SiLU.

    x must be 2-D (B, in) and grad must be off.
    """
    layers = weights[:-2]
    n = len(layers) // 2
    for i in range(n - 1):
        x = F.silu(torch.addmm(layers[2 * i + 1], x, layers[2 * i]), inplace=True)
    w, b = layers[-2], layers[-1]
    t = w.shape[1] // 2
    return torch.addmm(b[:t], x, w[:, :t])


def gaussian_nll(mean: Tensor, logvar: Tensor, target: Tensor, weights: Sequence[Tensor]) -> Tensor:
    """Gaussian NLL (normalized target space) plus the small log-variance bound regularizer."""
    nll = (((mean - target) ** 2) * torch.exp(-logvar) + logvar).mean()
    return nll + 0.01 * (weights[-2].sum() - weights[-1].sum())


class GaussianMLP(DynamicsModel):
    """One Gaussian MLP over the robot codec: the plain target network of the continual baselines.

    A single network (not an ensemble): continual strategies regularize one set of weights,
    and uncertainty comes from the learned (aleatoric) variance head.
    """

    def __init__(self, codec: StateCodec, hidden_size: int = 200, hidden_layers: int = 3) -> None:
        super().__init__(codec)
        if hidden_size < 1 or hidden_layers < 1:
            raise ValueError("hidden_size and hidden_layers must be >= 1")
        self.spec = TargetSpec(codec.feature_dim + codec.action_dim, codec.target_dim, hidden_size, hidden_layers)
        offset, scale = self.spec.init_offset_scale()
        flat = offset + scale * torch.empty_like(scale).uniform_(-math.sqrt(3), math.sqrt(3))
        # biases start at zero like nn.Linear's common practice for regression heads
        params = [p.clone() for p in self.spec.split(flat)]
        for i in range(1, 2 * len(self.spec.layer_dims), 2):
            params[i].zero_()
        self.weights = nn.ParameterList(nn.Parameter(p) for p in params)

    def predict_targets(self, inputs: Tensor) -> tuple[Tensor, Tensor]:
        return gaussian_mlp_forward(inputs, list(self.weights))

    def loss(self, batch: Transitions) -> Tensor:
        inputs = self.model_inputs(batch.states, batch.actions)
        target = self.target_norm.normalize(self.codec.targets(batch.states, batch.next_states))
        weights = list(self.weights)
        mean, logvar = gaussian_mlp_forward(inputs, weights)
        return gaussian_nll(mean, logvar, target, weights)

    @torch.no_grad()
    def step(self, states: Tensor, actions: Tensor) -> Tensor:
        mean = gaussian_mlp_mean(self.model_inputs(states, actions), list(self.weights))
        return self.codec.integrate(states, self.target_norm.denormalize(mean))


def from_config(node, codec: StateCodec) -> GaussianMLP:
    """Factory for a plain Gaussian MLP (`dynamics.target` sizes when built beside a hypernetwork)."""
    return GaussianMLP(codec, hidden_size=int(node.hidden_size), hidden_layers=int(node.hidden_layers))
