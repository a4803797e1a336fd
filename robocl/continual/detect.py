"""Task inference: notice a new dynamics regime from the model's own prediction error.

The error is the one-step MSE in normalized target units (1.0 = as wrong as predicting the
training mean), averaged over a short window so a single bump or contact does not fire it.
After a switch the detector stays quiet for `cooldown` steps while the learner adapts.
"""

from __future__ import annotations

from collections import deque

import torch

from robocl.dynamics.base import DynamicsModel, Transitions


def normalized_errors(model: DynamicsModel, data: Transitions) -> torch.Tensor:
    """Per-transition normalized squared one-step error of `model` (shape (N,))."""
    with torch.inference_mode():
        pred, _ = model.predict(data.states, data.actions)
        codec = model.codec
        err = codec.targets(data.states, pred) - codec.targets(data.states, data.next_states)
        return (err / model.target_norm.std).pow(2).mean(-1)


class RegimeDetector:
    """Fires when the windowed mean prediction error exceeds `threshold`."""

    def __init__(self, threshold: float = 0.5, window: int = 10, cooldown: int | None = None) -> None:
        if threshold <= 0 or window < 1:
            raise ValueError("threshold must be > 0 and window >= 1")
        self.threshold = float(threshold)
        self.window = int(window)
        self.cooldown = int(window if cooldown is None else cooldown)
        self.errors: deque[float] = deque(maxlen=self.window)
        self._quiet = 0
        self.switches: list[int] = []
        self.steps = 0

    def reset(self) -> None:
        self.errors.clear()
        self._quiet = self.cooldown

    def update(self, model: DynamicsModel, transition: Transitions) -> bool:
        """Record the error on the new transition(s); True when a regime change is detected."""
        self.steps += 1
        self.errors.extend(float(e) for e in normalized_errors(model, transition))
        if self._quiet > 0:
            self._quiet -= 1
            return False
        if len(self.errors) == self.window and sum(self.errors) / self.window > self.threshold:
            self.switches.append(self.steps)
            self.reset()
            return True
        return False
