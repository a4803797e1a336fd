"""Task inference: notice a new dynamics regime from the model's own prediction error.

The error is the one-step MSE in normalized target units (1.0 = as wrong as predicting the
training mean). The test is robocl's one change detector (robocl.continual.changepoint) on it:
the median over the last `window` transitions (a single bump or contact does not fire it) must
rise `factor` x above the error's own level and above `threshold`. After a switch the level is
learned again over `cooldown` steps (default 3 windows) while the learner adapts to the new regime.
"""

from __future__ import annotations

from collections import deque

import torch

from robocl.continual.changepoint import ChangeDetector
from robocl.dynamics.base import DynamicsModel, Transitions


def normalized_errors(model: DynamicsModel, data: Transitions) -> torch.Tensor:
    """Per-transition normalized squared one-step error of `model` (shape (N,))."""
    with torch.inference_mode():
        pred, _ = model.predict(data.states, data.actions)
        codec = model.codec
        err = codec.targets(data.states, pred) - codec.targets(data.states, data.next_states)
        return (err / model.target_norm.std).pow(2).mean(-1)


class RegimeDetector:
    """Fires when the median error over the last `window` transitions rises `factor` x above its own level
    and above `threshold`; `trigger` (that window's transitions above the threshold, kept when it fires)
    is enough to choose a task model."""

    def __init__(self, threshold: float = 0.5, window: int = 10, cooldown: int | None = None,
                 factor: float = 4.0) -> None:
        if threshold <= 0 or window < 1:
            raise ValueError("threshold must be > 0 and window >= 1")
        self.threshold = float(threshold)
        self.window = int(window)
        self.cooldown = max(self.window, int(3 * window if cooldown is None else cooldown))
        self.change = ChangeDetector(window=self.window, factor=factor, warmup=self.cooldown, rise_only=True,
                                     floor=self.threshold)
        self.errors: deque[float] = deque(maxlen=self.window)
        self.recent: deque[Transitions] = deque(maxlen=self.window)
        self.trigger: Transitions | None = None
        self.switches: list[int] = []
        self.steps = 0

    def reset(self) -> None:
        self.errors.clear()
        self.recent.clear()
        self.change.reset()

    def update(self, model: DynamicsModel, transition: Transitions) -> bool:
        """Record the error on the new transition(s); True when a regime change is detected."""
        fired = False
        for i, e in enumerate(normalized_errors(model, transition).tolist()):
            self.steps += 1
            self.errors.append(e)
            self.recent.append(transition[i: i + 1])
            if self.change.update(e):
                self.trigger = Transitions.concat([t for t, x in zip(self.recent, self.errors) if x > self.threshold])
                self.switches.append(self.steps)
                self.reset()
                fired = True
        return fired
