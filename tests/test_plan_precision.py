"""planner.precision=bf16: the ensemble's planning matmuls in bf16 predict what fp32 predicts to bf16's
accuracy, follow the weights as online learning changes them, and drive the real MuJoCo UGV to a goal like
fp32 does; a model or value that cannot do it is one UsageError line."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from robocl.build.planners import mppi, planning_dynamics
from robocl.dynamics.base import Transitions
from robocl.dynamics.ensemble import GaussianEnsemble
from robocl.dynamics.training import train_offline
from robocl.errors import UsageError
from robocl.planning.costs import QuadraticGoalCost
from robocl.robots.codec import PlanarBodyCodec


def robot(env=None):
    box = (env or gym.make("robocl/UGV-v0").unwrapped).action_space
    return OmegaConf.create({"action_low": box.low.tolist(), "action_high": box.high.tolist()})


def node(precision: str):
    return OmegaConf.create({"population": 400, "horizon": 5, "iterations": 1, "temperature": 0.3,
                             "noise_sigma": [0.5, 0.8], "precision": precision})


@pytest.fixture(scope="module")
def trained(ugv_data):
    train, _ = ugv_data
    torch.manual_seed(0)
    model = GaussianEnsemble(PlanarBodyCodec(), ensemble_size=3, hidden_size=64, hidden_layers=2)
    train_offline(model, train, epochs=25, batch_size=128, lr=3e-3)
    return model.eval()


def test_bf16_step_matches_fp32_to_bf16_accuracy_and_follows_weight_updates(trained, ugv_data):
    _, test = ugv_data
    s, a = test.states[:300], test.actions[:300]
    with torch.inference_mode():
        fp32 = trained.step(s, a)
        bf16 = trained.step(s, a, dtype=torch.bfloat16)
        assert bf16.dtype == torch.float32
        # each next state moves by at most a few cm per step; bf16 (8-bit mantissa) keeps ~0.4% per layer
        move = (fp32 - s)[:, :2].norm(dim=-1).mean()
        err = (bf16 - fp32)[:, :2].norm(dim=-1).mean()
        assert err < 0.05 * move, (float(err), float(move))
    # online learning changes the weights: the bf16 copies are cast again, not kept stale
    model = GaussianEnsemble(PlanarBodyCodec(), ensemble_size=3, hidden_size=64, hidden_layers=2).eval()
    model.load_state_dict(trained.state_dict())
    with torch.inference_mode():
        before = model.step(s, a, dtype=torch.bfloat16)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    loss = model.loss(Transitions(test.states[:64], -test.actions[:64], test.next_states[:64]))
    loss.backward()
    opt.step()
    with torch.inference_mode():
        after, after32 = model.step(s, a, dtype=torch.bfloat16), model.step(s, a)
    moved = (after - before)[:, :2].norm(dim=-1).mean()
    assert moved > 10 * (after - after32)[:, :2].norm(dim=-1).mean(), float(moved)


def test_precision_is_checked_when_the_planner_is_built(trained):
    cost = QuadraticGoalCost(torch.zeros(6), torch.ones(6))
    step = trained.step
    assert planning_dynamics(node("fp32"), step) is step
    with pytest.raises(UsageError, match="planner.precision=fp16: accepted fp32, bf16"):
        mppi(node("fp16"), trained.step, cost, robot())
    with pytest.raises(UsageError, match="plans in fp32 only"):
        mppi(node("bf16"), lambda s, a: s, cost, robot())


def drive_to(goal: np.ndarray, model: GaussianEnsemble, precision: str, steps: int = 60) -> float:
    """Closest approach of the MuJoCo UGV to `goal` under MPPI on `model` at `precision`."""
    env = gym.make("robocl/UGV-v0").unwrapped
    state, _ = env.reset(seed=0)
    weights = torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    cost = QuadraticGoalCost(torch.tensor([*goal, 0.0, 0.0, 0.0, 0.0], dtype=torch.float32), weights)
    planner = mppi(node(precision), model.step, cost, robot(env), seed=0)
    best = float("inf")
    for _ in range(steps):
        action = planner.plan(torch.as_tensor(state, dtype=torch.float32))
        state, *_ = env.step(action.numpy())
        best = min(best, float(np.linalg.norm(state[:2] - goal)))
    return best


def test_bf16_planner_drives_the_mujoco_ugv_to_a_goal_like_fp32(trained, one_torch_thread):
    goal = np.array([2.0, 1.0])
    fp32, bf16 = drive_to(goal, trained, "fp32"), drive_to(goal, trained, "bf16")
    assert fp32 < 0.5 and bf16 < 0.5, (fp32, bf16)  # from 2.2 m away
