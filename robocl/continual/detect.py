"""Task inference: notice a new dynamics regime from the model's own prediction error.

The error is the one-step MSE in normalized target units (1.0 = as wrong as predicting the
training mean), averaged over a short window so a single bump or contact does not fire it.
After a switch the detector stays quiet for `cooldown` steps (default 3 windows) while the
learner adapts to the new regime.
"""

from __future__ import annotations

import statistics
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
    """Fires when the median prediction error over the last `window` transitions exceeds `threshold`.

    The median (not the mean) ignores a single bump, and it only crosses the threshold once
    at least half the window comes from the new regime, so `trigger` (the window's
    transitions above the threshold, kept when it fires) is enough to choose a task model.
    """

    def __init__(self, threshold: float = 0.5, window: int = 10, cooldown: int | None = None) -> None:
        if threshold <= 0 or window < 1:
            raise ValueError("threshold must be > 0 and window >= 1")
        self.threshold = float(threshold)
        self.window = int(window)
        self.cooldown = int(3 * window if cooldown is None else cooldown)  # let the learner adapt first
        self.errors: deque[float] = deque(maxlen=self.window)
        self.recent: deque[Transitions] = deque(maxlen=self.window)
        self.trigger: Transitions | None = None
        self._quiet = 0
        self.switches: list[int] = []
        self.steps = 0

    def reset(self) -> None:
        self.errors.clear()
        self.recent.clear()
        self._quiet = self.cooldown

    def update(self, model: DynamicsModel, transition: Transitions) -> bool:
        """Record the error on the new transition(s); True when a regime change is detected."""
        errors = normalized_errors(model, transition)
        for i, e in enumerate(errors.tolist()):
            self.steps += 1
            self.errors.append(e)
            self.recent.append(transition[i: i + 1])
        if self._quiet > 0:
            self._quiet -= 1
            return False
        if len(self.errors) == self.window and statistics.median(self.errors) > self.threshold:
            self.trigger = Transitions.concat([t for t, e in zip(self.recent, self.errors) if e > self.threshold])
            self.switches.append(self.steps)
            self.reset()
            return True
        return False
