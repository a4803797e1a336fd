"""Property-based (hypothesis) tests of the Controller, the last line of defence on a robot.

Whatever the state (NaN, ±inf, huge, denormal, wrong shape) and whatever the model or refiner does
(returns NaN or huge values, raises), every action that leaves is finite and inside the robot's
action box, and every refusal to plan is counted as a safety event (a model that predicts NaN for every
sampled action sequence is refused: the plan would be an average of noise). Real code throughout: the
robot's codec and ensemble, the batched MPPI planner; faults are injected where they happen on a
robot (inside the model's step and the refiner)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import FaultyRefiner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robocl.build.models import make_model
from robocl.cli.app import compose
from robocl.continual.base import ContinualStrategy
from robocl.control import Controller
from robocl.planning.costs import WaypointCost
from robocl.planning.mppi import MPPI

FAULTS = ("none", "nan", "huge", "raise")


def build(robot: str):
    cfg, _ = compose([f"robot={robot}", "dynamics.ensemble_size=2", "dynamics.hidden_size=16"])
    torch.manual_seed(0)
    model = make_model(cfg).eval()
    fault = {"mode": "none"}

    def dynamics(states, actions):  # the model as the planner calls it, with a fault injected on demand
        if fault["mode"] == "raise":
            raise RuntimeError("model fault")
        out = model.step(states, actions)
        return out * float("nan") if fault["mode"] == "nan" else out * 1e30 if fault["mode"] == "huge" else out

    low, high = list(cfg.robot.action_low), list(cfg.robot.action_high)
    planner = MPPI(dynamics, WaypointCost(), action_low=low, action_high=high, horizon=3, population=16,
                   iterations=1, noise_sigma=[0.5] * len(low), seed=0, temperature=1.0)
    refiner = FaultyRefiner()
    controller = Controller(model, planner, ContinualStrategy(model), refiner,
                            safe_action=np.asarray(cfg.robot.safe_action, float))
    return controller, fault, refiner, np.asarray(low), np.asarray(high), model.codec.state_dim


SETUPS = {robot: build(robot) for robot in ("ugv", "quadrotor")}

values = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32),
                   st.sampled_from([0.0, 1e-45, -1e-38, 1e4, -1e5, 3.4e38]))


@st.composite
def states(draw, dim: int):
    n = draw(st.sampled_from([dim, dim, dim, dim - 1, dim + 1, 0]))
    return np.array(draw(st.lists(values, min_size=n, max_size=n)), dtype=float)


@pytest.mark.parametrize("robot", list(SETUPS))
@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_action_is_finite_and_inside_the_box_and_every_refusal_is_counted(robot, data):
    controller, fault, refiner, low, high, dim = SETUPS[robot]
    state = data.draw(states(dim))
    fault["mode"] = data.draw(st.sampled_from(FAULTS))
    refiner.mode = data.draw(st.sampled_from(FAULTS))
    events = len(controller.stats.safety_events)
    action = controller.act(state)
    assert action.shape == low.shape and np.all(np.isfinite(action))
    assert np.all(action >= low) and np.all(action <= high)
    usable = state.shape == (dim,) and np.all(np.isfinite(state)) and np.all(np.abs(state) <= controller.state_limit)
    refused = len(controller.stats.safety_events) - events
    if not usable or "raise" in (fault["mode"], refiner.mode) or "nan" in (fault["mode"], refiner.mode):
        assert refused == 1 and np.array_equal(action, controller.safe_action)  # the safe command, counted
    elif fault["mode"] == "none" and refiner.mode == "none":
        assert refused == 0  # a healthy cycle plans
    controller.observe(state, action, state)  # learning from garbage is skipped, never raises
