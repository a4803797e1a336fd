"""Exploration data for pretraining dynamics models in simulation."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch

from robocl.dynamics.base import Transitions


def smooth_random_actions(rng: np.random.Generator, low: np.ndarray, high: np.ndarray, steps: int,
                          hold_prob: float = 0.7) -> np.ndarray:
    """Piecewise-constant uniform actions with jitter: covers the action box and the
    velocity states that persistent commands produce (white noise would not)."""
    actions = np.empty((steps, low.size))
    current = rng.uniform(low, high)
    for t in range(steps):
        if rng.random() > hold_prob:
            current = rng.uniform(low, high)
        jitter = rng.normal(0.0, 0.05, low.size) * (high - low)
        actions[t] = np.clip(current + jitter, low, high)
    return actions


def collect_exploration(env: gym.Env, episodes: int, steps: int, seed: int = 0, progress=None,
                        shape_action: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> Transitions:
    """Roll random smooth actions through `env`; drops non-finite and terminal transitions.

    `shape_action(obs, action)` may bias the random action by the state (a quadrotor explores
    around a safe altitude instead of flying into the ground).
    """
    rng = np.random.default_rng(seed)
    low, high = env.action_space.low.astype(float), env.action_space.high.astype(float)
    states, actions, next_states = [], [], []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed * 10_000 + ep)
        for action in smooth_random_actions(rng, low, high, steps):
            if shape_action is not None:
                action = np.clip(shape_action(obs, action), low, high)
            next_obs, _, terminated, truncated, _ = env.step(action.astype(np.float32))
            if np.all(np.isfinite(next_obs)) and not terminated:
                states.append(obs)
                actions.append(action)
                next_states.append(next_obs)
            obs = next_obs
            if terminated or truncated:
                obs, _ = env.reset()
        if progress is not None:
            progress(ep + 1, episodes)
    as_t = lambda x: torch.as_tensor(np.asarray(x), dtype=torch.float32)  # noqa: E731
    return Transitions(as_t(states), as_t(actions), as_t(next_states))
