"""Online adaptation: a few optimizer steps on recent transitions after every control step."""

from __future__ import annotations

from collections import deque
from typing import Any

import torch

from robocl.continual.base import ContinualStrategy
from robocl.dynamics.base import DynamicsModel, Transitions


class RecentBuffer:
    """Fixed-size ring buffer of the most recent transitions (old data is not kept)."""

    def __init__(self, capacity: int, state_dim: int, action_dim: int) -> None:
        self.capacity = capacity
        self.states = torch.zeros(capacity, state_dim)
        self.actions = torch.zeros(capacity, action_dim)
        self.next_states = torch.zeros(capacity, state_dim)
        self.size = 0
        self.head = 0

    def add(self, batch: Transitions) -> None:
        for i in range(len(batch)):
            self.states[self.head] = batch.states[i]
            self.actions[self.head] = batch.actions[i]
            self.next_states[self.head] = batch.next_states[i]
            self.head = (self.head + 1) % self.capacity
            self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Transitions:
        idx = torch.randint(self.size, (min(batch_size, self.size),), generator=generator)
        return Transitions(self.states[idx], self.actions[idx], self.next_states[idx])

    def clear(self) -> None:
        self.size = 0
        self.head = 0


class OnlineFinetune(ContinualStrategy):
    """Fine-tunes the whole model online on a window of recent transitions.

    Recent-window replay makes adaptation fast after a regime change (the window fills
    with the new regime within `capacity` steps) at a fixed memory cost.
    """

    name = "online"

    def __init__(
        self,
        model: DynamicsModel,
        lr: float = 1e-3,
        steps_per_transition: int = 3,
        batch_size: int = 32,
        capacity: int = 64,
        warmup: int = 4,
        seed: int = 0,
        residual_window: int = 0,
    ) -> None:
        super().__init__(model)
        # residual_window > 0: predictions also add the mean of the network's own one-step residuals over
        # the last `residual_window` transitions (a disturbance estimate, as adaptive controllers keep),
        # while the weights learn the rest more slowly; the network is trained on the raw targets, and as it
        # absorbs a lasting change its residuals, and so the correction, shrink back to zero.
        self.residuals: deque[torch.Tensor] = deque(maxlen=residual_window) if residual_window > 0 else None
        codec = model.codec
        self.buffer = RecentBuffer(capacity, codec.state_dim, codec.action_dim)
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        self.steps = steps_per_transition
        self.batch_size = batch_size
        self.warmup = warmup
        self.generator = torch.Generator().manual_seed(seed)

    def observe(self, transition: Transitions) -> None:
        if self.residuals is not None:
            self._update_correction(transition)
        self.buffer.add(transition)
        if self.buffer.size < self.warmup:
            return
        self.model.train()
        with torch.enable_grad():
            for _ in range(self.steps):
                loss = self.model.loss(self.buffer.sample(self.batch_size, self.generator))
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
        self.model.eval()

    @torch.no_grad()
    def _update_correction(self, transition: Transitions) -> None:
        """The running mean of the network's residual in target space (prequential: this transition's
        residual is measured before the model learns from it, and counts from the next prediction on)."""
        norm = self.model.target_norm
        norm.offset.zero_()  # the network alone
        pred = self.model.predict(transition.states, transition.actions)[0]
        codec = self.model.codec
        residual = codec.targets(transition.states, transition.next_states) - codec.targets(transition.states, pred)
        if bool(torch.isfinite(residual).all()):
            self.residuals.extend(residual)
        if self.residuals:
            norm.offset.copy_(torch.stack(list(self.residuals)).mean(0))

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.optimizer.load_state_dict(state["optimizer"])


def from_config(node, model: DynamicsModel, seed: int = 0) -> OnlineFinetune:
    """Factory for `continual=online`."""
    return OnlineFinetune(
        model,
        lr=float(node.lr),
        steps_per_transition=int(node.steps_per_transition),
        batch_size=int(node.batch_size),
        capacity=int(node.capacity),
        seed=seed,
        residual_window=int(node.get("residual_window", 0) or 0),
    )
