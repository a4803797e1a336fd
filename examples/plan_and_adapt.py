"""Plan a gymnasium robot with a learned ensemble, then keep adapting it online after its actuation flips.

python examples/plan_and_adapt.py   (about a minute on 2 cores)
"""

import gymnasium as gym
import numpy as np
import robocl_envs  # noqa: F401  (registers robocl/UGV-v0)
import torch

from robocl import (
    MPPI,
    Controller,
    GaussianEnsemble,
    OnlineFinetune,
    PlanarBodyCodec,
    WaypointCost,
    collect_exploration,
    train_offline,
)

torch.manual_seed(0)
env = gym.make("robocl/UGV-v0").unwrapped
model = GaussianEnsemble(PlanarBodyCodec(), ensemble_size=3, hidden_size=128)
train_offline(model, collect_exploration(env, episodes=10, steps=150, seed=0), epochs=30)  # the nominal model
cost = WaypointCost()
planner = MPPI(model.step, cost, action_low=[-1.0, -1.57], action_high=[1.0, 1.57], population=500,
               noise_sigma=[0.5, 0.8], reset_particles=model.reset_particles)
controller = Controller(model, planner, OnlineFinetune(model))
obs, _ = env.reset(seed=0)
for goal, gains in (((2.0, 1.0), (1.0, 1.0)), ((0.0, 2.5), (-1.0, 1.0))):  # then "forward" drives it backwards
    env.set_gains(gains)
    cost.set_goal(torch.tensor(goal))
    first = len(controller.stats.pred_sq_err)
    for taken in range(1, 301):
        action = controller.act(obs)
        next_obs, *_ = env.step(action.astype(np.float32))
        controller.observe(obs, action, next_obs)  # a few online learning steps per transition
        obs = next_obs
        if np.linalg.norm(obs[:2] - goal) < 0.5 or taken == 300:
            break
    errors = controller.stats.pred_sq_err[first:]
    print(f"goal {goal} with gains {gains}: {np.linalg.norm(obs[:2] - goal):.3f} m away after {taken} steps; "
          f"model error first 10 steps {np.mean(errors[:10]):.3f}, last 10 {np.mean(errors[-10:]):.3f}")
