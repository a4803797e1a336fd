"""Persistently exciting commands for recording identification data (`excitation.std` in robocl-run).

A log flown by a planner alone is closed-loop data: each command is a function of the state, so a model
fitted to it learns how the robot moves along the planner's own choices but not how it answers the
other commands a sampling planner will try. System identification adds a small coloured dither to the
commands sent while recording; the recorded command is the one sent, so the learner sees cause and
effect. The dither is an Ornstein-Uhlenbeck process (correlated over ~1/(1-decay) control periods, so
the robot responds to it rather than filtering it out), clipped with the command to the robot's box.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Excitation:
    """Ornstein-Uhlenbeck dither with stationary std `std` (per command channel) and step correlation
    `decay`; `__call__(action)` returns action + dither, clipped to [low, high]."""

    def __init__(self, std: np.ndarray, decay: float, low: np.ndarray, high: np.ndarray, seed: int) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay={decay}: must be in [0, 1)")
        self.std = np.asarray(std, dtype=float)
        self.decay = float(decay)
        self.low, self.high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
        self.rng = np.random.default_rng(seed)
        self.state = np.zeros_like(self.std)

    def reset(self) -> None:
        self.state = np.zeros_like(self.std)

    def __call__(self, action: np.ndarray) -> np.ndarray:
        innovation = np.sqrt(1.0 - self.decay**2) * self.std * self.rng.normal(size=self.std.shape)
        self.state = self.decay * self.state + innovation
        return np.clip(np.asarray(action, dtype=float) + self.state, self.low, self.high).astype(action.dtype)


class ExcitedController:
    """A controller whose commands carry an `Excitation`; everything else (observe, stats, ...) is the
    controller's own, and the episode runners pass the sent command to `observe`, so an online learner
    learns from the command the robot actually received."""

    def __init__(self, controller: Any, excitation: Excitation) -> None:
        self._controller = controller
        self._excitation = excitation

    def __getattr__(self, name: str) -> Any:
        return getattr(self._controller, name)

    def __setattr__(self, name: str, value: Any) -> None:
        """Settings given to the controller (e.g. the node's `state_limit`) reach the controller."""
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._controller, name, value)

    def reset(self) -> None:
        self._excitation.reset()
        self._controller.reset()

    def act(self, state: np.ndarray) -> np.ndarray:
        """The planned command plus the dither; a safe command (the controller refused to plan) goes
        out as it is: a fault must stop or hover the robot, not excite it."""
        events = self._controller.stats.safety_events.count
        action = self._controller.act(state)
        if self._controller.stats.safety_events.count > events:
            return action
        return self._excitation(action)
