"""The dynamics-model interface shared by ensembles, hypernetworks and other learned models."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from robocl.robots.codec import StateCodec


@dataclass
class Transitions:
    """A batch of transitions (s, a, s'); tensors share the leading batch dimension."""

    states: Tensor
    actions: Tensor
    next_states: Tensor

    def __len__(self) -> int:
        return self.states.shape[0]

    def __getitem__(self, index: Tensor | slice) -> Transitions:
        return Transitions(self.states[index], self.actions[index], self.next_states[index])

    @staticmethod
    def concat(parts: list[Transitions]) -> Transitions:
        return Transitions(
            torch.cat([p.states for p in parts]),
            torch.cat([p.actions for p in parts]),
            torch.cat([p.next_states for p in parts]),
        )


class Normalizer(nn.Module):
    """Running-free standardizer fitted once on training data; stored in checkpoints."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        # A run-time correction added on the way out (never saved, never trained on): an online learner
        # may set it to the running mean of the model's recent residuals (continual.residual_window).
        self.register_buffer("offset", torch.zeros(dim), persistent=False)
        self.eps = eps

    @torch.no_grad()
    def fit(self, data: Tensor) -> None:
        self.mean.copy_(data.mean(0))
        self.std.copy_(data.std(0).clamp_min(self.eps) if data.shape[0] > 1 else torch.ones_like(self.std))

    def normalize(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std

    def denormalize(self, x: Tensor) -> Tensor:
        return x * self.std + (self.mean + self.offset)


class DynamicsModel(nn.Module):
    """A learned model of s' given (s, a) that planners roll out and learners train.

    Subclasses implement `predict_targets` (normalized-space mean/log-variance of the codec
    target) and may override `step` for faster batched rollouts.
    """

    def __init__(self, codec: StateCodec) -> None:
        super().__init__()
        self.codec = codec
        self.input_norm = Normalizer(codec.feature_dim + codec.action_dim)
        self.target_norm = Normalizer(codec.target_dim)

    def model_inputs(self, states: Tensor, actions: Tensor) -> Tensor:
        return self.input_norm.normalize(torch.cat([self.codec.features(states), actions], dim=-1))

    @torch.no_grad()
    def fit_normalizers(self, data: Transitions) -> None:
        self.input_norm.fit(torch.cat([self.codec.features(data.states), data.actions], dim=-1))
        self.target_norm.fit(self.codec.targets(data.states, data.next_states))

    def predict_targets(self, inputs: Tensor) -> tuple[Tensor, Tensor]:
        """(mean, log-variance) of the normalized target for normalized inputs."""
        raise NotImplementedError

    def loss(self, batch: Transitions) -> Tensor:
        """Training loss (Gaussian NLL in normalized target space)."""
        raise NotImplementedError

    def predict(self, states: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        """Mean next state and the target-space variance (model average), for evaluation."""
        mean, logvar = self.predict_targets(self.model_inputs(states, actions))
        if mean.dim() == states.dim() + 1:  # ensemble: (E, B, D) -> moments of the mixture
            var = logvar.exp()
            mix_mean = mean.mean(0)
            var = (var + mean.pow(2)).mean(0) - mix_mean.pow(2)
            mean = mix_mean
        else:
            var = logvar.exp()
        target = self.target_norm.denormalize(mean)
        return self.codec.integrate(states, target), var * self.target_norm.std.pow(2)

    def step(self, states: Tensor, actions: Tensor) -> Tensor:
        """Next states for a batch of particles, as used inside planner rollouts."""
        return self.predict(states, actions)[0]

    def reset_particles(self) -> None:
        """Called by planners before each rollout (ensembles re-draw member assignments)."""
