"""The manipulation targets of the continual sequences: MuJoCo pusher and door with in-place regimes."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import robocl_envs  # noqa: F401
import torch
from robocl_envs.door import DoorEnv, DoorParams
from robocl_envs.pusher import PusherEnv, PusherParams

from robocl.planning.costs import DoorCost, PushCost
from robocl.robots.manipulation import PushCodec


def push_straight(env: PusherEnv, steps: int) -> np.ndarray:
    """Drive the finger straight at the puck (+y) for `steps`; returns the puck displacement."""
    obs, _ = env.reset(seed=0, options={"goal": (0.0, 0.3)})
    start = obs[4:6].copy()
    for _ in range(steps):
        obs, *_ = env.step(np.array([0.0, 1.0]))
    return obs[4:6] - start


def test_pusher_registers_and_pushes_the_puck():
    env = gym.make("robocl/Pusher-v0").unwrapped
    assert isinstance(env, PusherEnv)
    moved = push_straight(env, 15)
    assert moved[1] > 0.1 and abs(moved[0]) < 0.05


def coast(env: PusherEnv) -> float:
    """Push for 0.8 s, stop the finger and pull it back: how far the puck slides on its own."""
    push_straight(env, 8)
    before = env.data.qpos[3]
    for _ in range(4):
        env.step(np.array([0.0, -1.0]))
    return float(env.data.qpos[3] - before)


def test_pusher_regimes_change_the_physics_in_place():
    env = PusherEnv()
    nominal = push_straight(env, 15)
    nominal_coast = coast(env)
    env.set_params(PusherParams(puck_mass=1.5, friction=0.8))  # 11.8 N of friction: barely pushable
    heavy = push_straight(env, 15)
    env.set_params(PusherParams(friction=0.05))
    assert env.params.friction == 0.05 and env.model.dof_frictionloss[2] == pytest.approx(0.05 * 0.4 * 9.81)
    assert heavy[1] < 0.7 * nominal[1]
    assert coast(env) > 3 * max(nominal_coast, 1e-3)  # an icy puck keeps sliding
    with pytest.raises(ValueError):
        PusherParams(puck_mass=-1)


def test_pusher_exploration_touches_the_puck_and_success_is_reported():
    env = PusherEnv()
    s, a, n = env.explore(3, 60, seed=0)
    assert s.shape == n.shape == (len(a), 8) and len(a) > 150
    assert (np.linalg.norm(n[:, 4:6] - s[:, 4:6], axis=1) > 1e-3).mean() > 0.3
    obs, info = env.reset(seed=1, options={"goal": (0.0, 0.0)})
    _, _, _, _, info = env.step(np.zeros(2))
    assert info["success"]  # the puck starts within 5 cm of the origin


def test_door_opens_when_pushed_and_regimes_apply():
    env = gym.make("robocl/Door-v0").unwrapped
    assert isinstance(env, DoorEnv)

    def open_for(steps: int) -> float:
        obs, _ = env.reset(seed=0)
        for _ in range(steps):
            obs, _, _, _, info = env.step(np.array([0.0, 1.0]))
        return float(obs[4])

    nominal = open_for(12)
    assert nominal > 0.3
    env.set_params(DoorParams(damping=3.0))
    assert open_for(12) < nominal
    env.set_params(DoorParams(size=1.4))
    leaf = env.model.geom("leaf").id
    assert env.model.geom_size[leaf, 0] == pytest.approx(0.15 * 1.4)
    assert env.model.body_mass[env.model.body("leaf").id] == pytest.approx(1.5 * 1.4)
    s, a, n = env.explore(2, 80, seed=0)
    assert (np.abs(n[:, 4] - s[:, 4]) > 1e-3).mean() > 0.3
    with pytest.raises(ValueError):
        DoorParams(size=3.0)


def test_costs_prefer_progress_and_codec_is_translation_invariant():
    push = PushCost()
    push.set_goal(torch.tensor([0.0, 0.2]))
    near = torch.zeros(1, 3, 8)
    near[..., 4:6] = torch.tensor([0.0, 0.15])
    far = torch.zeros(1, 3, 8)
    assert float(push(near, torch.zeros(1, 2, 2))) < float(push(far, torch.zeros(1, 2, 2)))
    door = DoorCost()
    door.set_goal(torch.tensor([1.0]))
    opened = torch.zeros(1, 3, 6)
    opened[..., 4] = 1.0
    assert float(door(opened, torch.zeros(1, 2, 2))) < float(door(torch.zeros(1, 3, 6), torch.zeros(1, 2, 2)))
    codec = PushCodec()
    s = torch.randn(4, 8)
    shifted = s.clone()
    shifted[:, [0, 4]] += 0.3
    assert torch.allclose(codec.features(s), codec.features(shifted))


def test_quad_codec_round_trips_and_wraps_yaw():
    from robocl.robots.quadrotor import QuadCodec

    codec = QuadCodec()
    s = torch.randn(5, 12)
    s[:, 8] = 3.1
    n = s + 0.01 * torch.randn(5, 12)
    n[:, 8] = -3.1  # crossed +-pi: a small turn, not a 6.2 rad one
    t = codec.targets(s, n)
    assert torch.all(t[:, 8].abs() < 0.1)
    assert torch.allclose(codec.integrate(s, t), n, atol=1e-5)
    assert torch.equal(codec.features(s), s[:, 3:])
