"""The Controller: one step = (learn from the last transition) -> plan -> refine -> act.

The same Controller runs in simulation rollouts, in the ROS node and in offline evaluation;
only the source of states and the sink of actions change. It is also the last line of
defence on a robot: a non-finite, out-of-range or wrongly shaped state never reaches the planner;
a planner or refiner that raises, or returns a non-finite action, and a model whose predictions are
not finite for any sampled action sequence, give the safe action; every
action that leaves lies within the planner's action bounds; and each such event is counted.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from robocl.continual.base import ContinualStrategy
from robocl.dynamics.base import DynamicsModel, Transitions
from robocl.dynamics.selector import RecentErrorSelector
from robocl.planning.base import SamplingPlanner
from robocl.refiners.base import Refiner

LAST_PLAN: Any = object()  # `Controller.observe`'s default: the plan of the last `act`


@dataclass
class SafetyEvent:
    step: int
    reason: str


STATS_WINDOW = 1000  # per-step timings and errors a controller keeps by default (the latest steps)


class Recent:
    """The latest `window` items of a per-step series (every item with window None), with `count`: how many
    were ever appended. Reads like the list it replaces (len, index, slice, iterate: the kept items), but a
    controller that runs for days keeps a fixed amount of memory."""

    def __init__(self, window: int | None = STATS_WINDOW) -> None:
        self._items: deque = deque(maxlen=window)
        self.count = 0

    @property
    def window(self) -> int | None:
        return self._items.maxlen

    def append(self, item: Any) -> None:
        self._items.append(item)
        self.count += 1

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._items)

    def __getitem__(self, key: int | slice) -> Any:
        return list(self._items)[key] if isinstance(key, slice) else self._items[key]

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return np.asarray(list(self._items), dtype=dtype)  # np.percentile and friends, without item-by-item reads

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self._items)!r}, count={self.count})"


class RecentValues(Recent):
    """`Recent` numbers, plus the running sum and mean over every value ever appended."""

    def __init__(self, window: int | None = STATS_WINDOW) -> None:
        super().__init__(window)
        self.total = 0.0

    def append(self, item: float) -> None:
        super().append(item)
        self.total += float(item)

    def mean_all(self) -> float | None:
        """The mean over every value appended (not only the kept ones; np.mean gives theirs); None before the
        first."""
        return self.total / self.count if self.count else None


class ControllerStats:
    """What a run reports about control: timing, prediction error and safety events.

    Per-step series keep the latest `window` steps (every step with window None) and count all of them:
    an episode runner sizes the window to its episode (`robocl.build.controller.make_controller`), so its
    percentiles cover every step, while a controller on a robot keeps a bounded, recent history."""

    def __init__(self, window: int | None = STATS_WINDOW) -> None:
        self.window = window
        self.plan_ms = RecentValues(window)
        self.refine_ms = RecentValues(window)
        self.learn_ms = RecentValues(window)
        self.pred_sq_err = RecentValues(window)
        self.safety_events = Recent(window)
        self.steps = 0


class Controller:
    """Couples a dynamics model, a continual strategy, a planner and a refiner.

    `stats_window`: how many of the latest steps `stats` keeps per series (None: every step; counts and the
    mean prediction error always cover every step).

    `learn_planned`: the strategy learns (state, planned action, next state), the robot as the refiner
    presents it to the planner, instead of the executed action. Beside a refiner that compensates a regime
    change, a learner of the executed action models the same change a second time (the planner then asks
    for the compensated motion and the refiner compensates again); a learner of the refined robot models
    only what refinement leaves over, which is small while the refiner works; it learns nothing while the
    refiner is not `settled` (registering a regime), when the refined robot changes from step to step.

    `selector`: the planner plans through it (built with it); each observed transition gives it the learner's
    and the nominal model's one-step errors on the planned action, so it can pick the better one."""

    def __init__(
        self,
        model: DynamicsModel,
        planner: SamplingPlanner,
        strategy: ContinualStrategy | None = None,
        refiner: Refiner | None = None,
        safe_action: np.ndarray | None = None,
        state_limit: float = 1e4,
        stats_window: int | None = STATS_WINDOW,
        learn_planned: bool = False,
        selector: RecentErrorSelector | None = None,
    ) -> None:
        self.model = model
        self.selector = selector
        self.learn_planned = learn_planned
        self.planner = planner
        self.strategy = strategy or ContinualStrategy(model)
        self.refiner = refiner or Refiner()
        action_dim = planner.action_dim
        self.safe_action = np.zeros(action_dim) if safe_action is None else np.asarray(safe_action, float)
        self.state_limit = state_limit
        self.stats = ControllerStats(stats_window)
        self._last_planned: torch.Tensor | None = None

    @property
    def last_planned(self) -> torch.Tensor | None:
        """The planner's action at the last `act` (before refining); None after a reset or a safe action."""
        return self._last_planned

    def reset(self) -> None:
        self.planner.reset()
        self.refiner.reset()
        self._last_planned = None

    def is_healthy(self, state: np.ndarray) -> str | None:
        """None if the state may be planned on, else the reason it may not."""
        if state.shape != (self.model.codec.state_dim,):
            return "state of wrong shape"
        if not np.all(np.isfinite(state)):
            return "non-finite state"
        if np.any(np.abs(state) > self.state_limit):
            return "state out of range"
        return None

    def act(self, state: np.ndarray) -> np.ndarray:
        """The action to execute now; the safe (stop) action if the state is unusable."""
        step = self.stats.steps
        self.stats.steps += 1
        try:
            state = np.asarray(state, dtype=float)
        except (TypeError, ValueError):
            return self._safe(step, "state not numeric")
        problem = self.is_healthy(state)
        if problem:
            return self._safe(step, problem)
        s = torch.as_tensor(state, dtype=torch.float32)
        t0 = time.perf_counter()
        try:
            planned = self.planner.plan(s)
        except Exception as exc:  # a model or planner fault must stop the robot, not crash its controller
            return self._safe(step, f"planner error ({type(exc).__name__})")
        if getattr(self.planner, "finite_rollouts", None) == 0:  # every predicted rollout NaN/inf: the plan is noise
            return self._safe(step, "no finite model rollout")
        t1 = time.perf_counter()
        try:
            with torch.inference_mode():
                action = self.refiner.refine(s, planned)
        except Exception as exc:
            return self._safe(step, f"refiner error ({type(exc).__name__})")
        t2 = time.perf_counter()
        self.stats.plan_ms.append((t1 - t0) * 1e3)
        self.stats.refine_ms.append((t2 - t1) * 1e3)
        self._last_planned = planned
        out = np.asarray(action.detach().cpu().numpy(), dtype=float).reshape(-1)
        if out.shape != self.safe_action.shape:
            return self._safe(step, "action of wrong shape")
        if not np.all(np.isfinite(out)):
            return self._safe(step, "non-finite action")
        return np.clip(out, self.planner.low.numpy(), self.planner.high.numpy())

    def _safe(self, step: int, reason: str) -> np.ndarray:
        """Record why, forget the plan, and return the safe action (stop / hover)."""
        self.stats.safety_events.append(SafetyEvent(step, reason))
        self.planner.reset()
        self._last_planned = None
        return self.safe_action.copy()

    def _sq_error(self, s: torch.Tensor, predicted: torch.Tensor, s2: torch.Tensor) -> float:
        """A one-step prediction's squared error, in the learner's normalized target units (mean over dims)."""
        err = self.model.codec.targets(s, predicted) - self.model.codec.targets(s, s2)
        return float((err / self.model.target_norm.std).pow(2).mean())

    def observe(self, state: np.ndarray, action: np.ndarray, next_state: np.ndarray,
                planned: torch.Tensor | None = LAST_PLAN) -> None:
        """Learn from the executed transition (skipped if any part of it is not finite).

        The prediction error is measured for the plan the action came from: `planned`, by default the last
        `act`'s (`last_planned`); a caller that has acted again since passes the one it kept (None: no plan,
        the executed action is used)."""
        if planned is LAST_PLAN:
            planned = self._last_planned
        try:
            state, action, next_state = (np.asarray(x, dtype=float) for x in (state, action, next_state))
        except (TypeError, ValueError):
            return
        if self.is_healthy(state) or self.is_healthy(next_state) or action.shape != self.safe_action.shape \
                or not np.all(np.isfinite(action)):
            return
        s = torch.as_tensor(state, dtype=torch.float32)[None]
        a = torch.as_tensor(action, dtype=torch.float32)[None]
        s2 = torch.as_tensor(next_state, dtype=torch.float32)[None]
        planned = planned[None] if planned is not None else a
        with torch.inference_mode():
            predicted = self.model.predict(s, planned)[0]
            learner_error = self._sq_error(s, predicted, s2)
            self.stats.pred_sq_err.append(learner_error)
            if self.selector is not None:
                self.selector.update(learner_error, self._sq_error(s, self.selector.nominal.predict(s, planned)[0], s2))
            self.refiner.observe(s[0], planned[0], a[0], s2[0], predicted[0])
        if self.learn_planned and not self.refiner.settled:
            return  # the refined robot is still changing as the refiner registers a regime: not learned
        t0 = time.perf_counter()
        self.strategy.observe(Transitions(s, planned if self.learn_planned else a, s2))
        self.stats.learn_ms.append((time.perf_counter() - t0) * 1e3)
