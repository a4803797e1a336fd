"""Elastic weight consolidation (Kirkpatrick et al. 2017), online variant (Schwarz et al. 2018).

One diagonal Fisher accumulates over tasks (F <- gamma F + F_task) and the anchor is the
latest consolidated weights, so memory stays fixed however many tasks come.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.func import functional_call, grad, vmap

from robocl.continual.penalties import quadratic_anchor
from robocl.continual.trainable import TrainableStrategy, common_kwargs, snapshot
from robocl.dynamics.base import DynamicsModel, Transitions


def diagonal_fisher(model: DynamicsModel, data: Transitions, samples: int = 256,
                    generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """Empirical diagonal Fisher: mean of per-sample squared gradients of the model's NLL.

    Per-sample gradients come from one vmapped call (no Python loop over samples).
    """
    idx = torch.randperm(len(data), generator=generator)[: min(samples, len(data))]
    sub = data[idx]
    wrapper = _LossCall(model)
    params = {f"model.{k}": p.detach() for k, p in model.named_parameters() if p.requires_grad}

    def loss(p: dict[str, Tensor], s: Tensor, a: Tensor, s2: Tensor) -> Tensor:
        return functional_call(wrapper, p, (s, a, s2), strict=False)

    was_training = model.training
    model.eval()
    with torch.enable_grad():
        grads = vmap(grad(loss), in_dims=(None, 0, 0, 0), randomness="same")(
            params, sub.states, sub.actions, sub.next_states)
    model.train(was_training)
    return {k.removeprefix("model."): g.pow(2).mean(0) for k, g in grads.items()}


class _LossCall(torch.nn.Module):
    """Adapter so functional_call can call `model.loss` on one transition."""

    def __init__(self, model: DynamicsModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, s: Tensor, a: Tensor, s2: Tensor) -> Tensor:
        return self.model.loss(Transitions(s[None], a[None], s2[None]))


class EWC(TrainableStrategy):
    """penalty = strength/2 * sum F (theta - theta*)^2."""

    name = "ewc"

    def __init__(self, model: DynamicsModel, strength: float = 100.0, gamma: float = 1.0,
                 fisher_samples: int = 256, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.strength = float(strength)
        self.gamma = float(gamma)
        self.fisher_samples = int(fisher_samples)
        self.fisher: dict[str, Tensor] | None = None
        self.anchor: dict[str, Tensor] | None = None

    def penalty(self) -> Tensor:
        if self.fisher is None or self.anchor is None:
            return torch.zeros(())
        named = dict(self.model.named_parameters())
        names = list(self.fisher)
        return 0.5 * self.strength * quadratic_anchor([named[k] for k in names], [self.anchor[k] for k in names],
                                                      [self.fisher[k] for k in names])

    def consolidate(self, data: Transitions) -> None:
        new = diagonal_fisher(self.model, data, self.fisher_samples, self.generator)
        if self.fisher is None:
            self.fisher = new
        else:
            self.fisher = {k: self.gamma * self.fisher[k] + new[k] for k in new}
        named = dict(self.model.named_parameters())
        self.anchor = dict(zip(new, snapshot([named[k] for k in new])))

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "fisher": self.fisher, "anchor": self.anchor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.fisher, self.anchor = state.get("fisher"), state.get("anchor")


def from_config(node, model: DynamicsModel, seed: int = 0) -> EWC:
    """Factory for `continual=ewc`."""
    return EWC(model, strength=float(node.strength), gamma=float(node.get("gamma", 1.0)),
               fisher_samples=int(node.get("fisher_samples", 256)), **common_kwargs(node, seed))
