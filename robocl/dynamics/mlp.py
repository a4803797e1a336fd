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
NLL_BETA = 1.0


@dataclass(frozen=True)
class TargetSpec:
    """Shapes of a Gaussian MLP: per layer W (in, out) and b (out,).

    The head outputs 2*D values (mean, raw log-variance); the log-variance is soft-clamped to
    the fixed range [MIN_LOGVAR, MAX_LOGVAR]. The bounds are constants, not learned as in
    Chua et al. 2018: with learned bounds the bound regularizer can run them past each other
    (the loss then has no floor), which a hypernetwork that generates them does within a task.
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
        return out

    @property
    def numel(self) -> int:
        return sum(math.prod(s) for s in self.shapes)

    def init_offset_scale(self) -> tuple[Tensor, Tensor]:
        """Per-element (offset, scale) so that offset + scale * N(0, 1) is a sensible initialization.

        Weights and biases get std 1/sqrt(3 fan_in) (PyTorch's default uniform init has that std).
        """
        offsets, scales = [], []
        for a, b in self.layer_dims:
            std = 1.0 / math.sqrt(3 * a)
            offsets += [torch.zeros(a * b), torch.zeros(b)]
            scales += [torch.full((a * b,), std), torch.full((b,), std)]
        return torch.cat(offsets), torch.cat(scales)

    def split(self, flat: Tensor) -> list[Tensor]:
        """A flat vector (numel,) into the weight list, as views."""
        parts = torch.split(flat, [math.prod(s) for s in self.shapes])
        return [p.view(s) for p, s in zip(parts, self.shapes)]


def _bound_logvar(raw: Tensor) -> Tensor:
    logvar = MAX_LOGVAR - F.softplus(MAX_LOGVAR - raw)
    return MIN_LOGVAR + F.softplus(logvar - MIN_LOGVAR)


def gaussian_mlp_forward(x: Tensor, weights: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """(mean, bounded log-variance) of a Gaussian MLP given its weight list (see TargetSpec)."""
    layers = weights
    n = len(layers) // 2
    for i in range(n - 1):
        x = F.silu(torch.addmm(layers[2 * i + 1], x, layers[2 * i]) if x.dim() == 2
                   else x @ layers[2 * i] + layers[2 * i + 1])
    out = x @ layers[-2] + layers[-1]
    mean, raw = out.chunk(2, dim=-1)
    return mean, _bound_logvar(raw)


def gaussian_mlp_mean(x: Tensor, weights: Sequence[Tensor]) -> Tensor:
    """Planning hot path: mean only (the log-variance half of the head is skipped), in-place SiLU.

    x must be 2-D (B, in) and grad must be off.
    """
    layers = weights
    n = len(layers) // 2
    for i in range(n - 1):
        x = F.silu(torch.addmm(layers[2 * i + 1], x, layers[2 * i]), inplace=True)
    w, b = layers[-2], layers[-1]
    t = w.shape[1] // 2
    return torch.addmm(b[:t], x, w[:, :t])


def gaussian_nll(mean: Tensor, logvar: Tensor, target: Tensor, beta: float = NLL_BETA) -> Tensor:
    """beta-NLL (Seitzer et al. 2022) in normalized target space.

    Each sample's Gaussian NLL is weighted by stop_grad(var)^beta. With beta = 0 this is the
    plain NLL, whose gradient on the mean is scaled by the precision: after one task the model
    is confident, and a new task's large errors then train the mean very slowly (a continual
    learner meets exactly that at every task switch). beta = 1 gives the mean an MSE-like
    gradient while the variance head still learns.
    """
    nll = ((mean - target) ** 2) * torch.exp(-logvar) + logvar
    if beta:
        nll = nll * torch.exp(beta * logvar).detach()
    return nll.mean()


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
        return gaussian_nll(mean, logvar, target)

    @torch.no_grad()
    def step(self, states: Tensor, actions: Tensor) -> Tensor:
        mean = gaussian_mlp_mean(self.model_inputs(states, actions), list(self.weights))
        return self.codec.integrate(states, self.target_norm.denormalize(mean))


def from_config(node, codec: StateCodec) -> GaussianMLP:
    """Factory for a plain Gaussian MLP (`dynamics.target` sizes when built beside a hypernetwork)."""
    return GaussianMLP(codec, hidden_size=int(node.hidden_size), hidden_layers=int(node.hidden_layers))
