"""Shared fixtures: small real data from the real UGV simulator, isolated caches."""

from __future__ import annotations

import os

import gymnasium as gym
import pytest
import robocl_envs  # noqa: F401
import torch

from robocl.data import collect_exploration

torch.set_num_threads(min(2, os.cpu_count() or 1))

# The user's model cache, read before `isolated_cache` points ROBOCL_CACHE_DIR at a temporary folder:
# only the slow acceptance tests of the default experiments use it (hours of training otherwise).
USER_CACHE_DIR = os.environ.get("ROBOCL_CACHE_DIR") or os.path.expanduser("~/.cache/robocl")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test run trains its own models (no stale user cache), shared within the session."""
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
