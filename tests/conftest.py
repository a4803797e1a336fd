"""Shared fixtures: small real data from the real UGV simulator, isolated caches."""

from __future__ import annotations

import os

import gymnasium as gym
import pytest
import robocl_envs  # noqa: F401
import torch

from robocl.data import collect_exploration

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def isolated_cache(request, tmp_path_factory, monkeypatch):
    """Every test run trains its own models (no stale user cache), shared within the session; a test
    marked `user_cache` keeps the user's (the config's runtime.cache_dir default)."""
    if request.node.get_closest_marker("user_cache") is None:
        monkeypatch.setenv("ROBOCL_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "robocl-cache"))
    monkeypatch.setenv("WANDB_MODE", "offline")


@pytest.fixture
def one_torch_thread():
    """The machine is shared: one torch thread (also faster than two at the drag tests' sizes)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def ugv_data():
    """Nominal-regime exploration transitions: (train, held-out)."""
    env = gym.make("robocl/UGV-v0").unwrapped
    train = collect_exploration(env, episodes=8, steps=120, seed=0)
    test = collect_exploration(env, episodes=3, steps=100, seed=99)
    return train, test
