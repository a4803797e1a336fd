"""Plan on whichever of two models has lately predicted the robot better: an online learner or the frozen nominal.

Beside the AFM refiner, the robot the planner sees (refiner + robot) behaves like the nominal model while
refinement works. A learner fitted to it online then only adds its own fitting error, and pays only where
refinement leaves a residual. So the planner uses the learner only while its recent one-step error is
clearly below the nominal model's (`margin` times it), both measured on the same transitions; the learner
keeps learning either way.
"""

from __future__ import annotations

import torch
from torch import Tensor

from robocl.dynamics.base import DynamicsModel


class RecentErrorSelector:
    """`step` / `reset_particles` for a planner, switching between `learner` and `nominal` by their errors'
    exponential moving averages (`halflife` transitions); the learner is chosen after `warmup` transitions
    only while its average is below `margin` x the nominal's."""

    def __init__(self, learner: DynamicsModel, nominal: DynamicsModel, halflife: float = 25.0,
                 margin: float = 0.8, warmup: int = 25) -> None:
        if halflife <= 0 or not 0 < margin <= 1 or warmup < 0:
            raise ValueError("selector: halflife > 0, 0 < margin <= 1 and warmup >= 0 are required")
        self.learner = learner
        self.nominal = nominal
        self.decay = 0.5 ** (1.0 / halflife)
        self.margin = margin
        self.warmup = warmup
        self.seen = 0
        self.learner_error = 0.0
        self.nominal_error = 0.0
        self.use_learner = False
        self.switches = 0  # times the choice changed
        self.learner_steps = 0  # transitions after which the learner was chosen

    @property
    def active(self) -> DynamicsModel:
        return self.learner if self.use_learner else self.nominal

    def step(self, states: Tensor, actions: Tensor, dtype: torch.dtype | None = None) -> Tensor:
        """The active model's step (`dtype`: bf16 planning, passed on only when asked for)."""
        if dtype is None:
            return self.active.step(states, actions)
        return self.active.step(states, actions, dtype=dtype)

    def reset_particles(self) -> None:
        self.active.reset_particles()

    def update(self, learner_error: float, nominal_error: float) -> None:
        """One transition's errors (the same measure for both models)."""
        w = self.decay if self.seen else 0.0
        self.learner_error = w * self.learner_error + (1 - w) * learner_error
        self.nominal_error = w * self.nominal_error + (1 - w) * nominal_error
        self.seen += 1
        choice = self.seen > self.warmup and self.learner_error < self.margin * self.nominal_error
        self.switches += choice != self.use_learner
        self.learner_steps += choice
        self.use_learner = choice

    def record(self) -> dict[str, float]:
        """What a run reports: how often the learner planned and how often the choice changed."""
        return {"learner_share": self.learner_steps / max(self.seen, 1), "selector_switches": self.switches}
