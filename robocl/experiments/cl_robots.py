"""Robots for continual task sequences: how to set a regime, collect data and score the planner.

Each target turns a regime (a dict of the env's physical parameters, from `cl.tasks[i].params`)
into an env setting, collects exploration data in it, and measures planner success on a short
task in it. The continual runner stays robot-agnostic. (The robots' codecs live in robocl.robots,
the planner costs in robocl.planning.costs.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import robocl_envs  # noqa: F401  (registers the robocl/* environments)
import torch
from omegaconf import DictConfig

from robocl.control import Controller
from robocl.dynamics.base import Transitions
from robocl.errors import UsageError
from robocl.planning.costs import DoorCost, PushCost
from robocl.sim.data import collect_exploration


class CLTarget(Protocol):
    def make_env(self) -> gym.Env: ...

    def set_regime(self, env: gym.Env, params: dict[str, Any]) -> None: ...

    def collect(self, env: gym.Env, episodes: int, steps: int, seed: int) -> Transitions: ...

    def make_cost(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]: ...

    def planner_success(self, env: gym.Env, controller: Controller, cost: Any, params: dict[str, Any],
                        seed: int) -> float: ...


def _regime(cls: type, params: dict[str, Any], where: str) -> Any:
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{where}: {exc}") from None


class UGVTarget:
    """UGV regimes via UGVParams (payload, friction, wheels, motors, AFM gains); planner: a short course."""

    def __init__(self, cfg: DictConfig) -> None:
        from robocl_envs.courses import CourseError, load_course

        self.cfg = cfg
        plan = cfg.cl.plan
        try:
            course = load_course(str(plan.course), key="cl.plan.course")
        except CourseError as exc:
            raise UsageError(str(exc)) from None
        self.waypoints = course[: int(plan.waypoints)]
        self.dt = float(cfg.robot.dt)

    def make_env(self) -> gym.Env:
        return gym.make(str(self.cfg.robot.env_id), dt=self.dt).unwrapped

    def check(self, params: dict[str, Any], where: str) -> None:
        from robocl_envs.ugv import UGVParams

        _regime(UGVParams, params, where)

    def set_regime(self, env: gym.Env, params: dict[str, Any]) -> None:
        from robocl_envs.ugv import UGVParams

        env.set_params(_regime(UGVParams, params, "cl.tasks"))

    def collect(self, env: gym.Env, episodes: int, steps: int, seed: int) -> Transitions:
        return collect_exploration(env, episodes, steps, seed=seed)

    def make_cost(self):
        from robocl.planning.costs import WaypointCost

        return WaypointCost()

    def planner_success(self, env: gym.Env, controller: Controller, cost: Any, params: dict[str, Any],
                        seed: int) -> float:
        from robocl.sim.rollouts import run_waypoint_episode
        from robocl.tasks.waypoints import GainSchedule, WaypointMission

        gains = params.get("gains", (1.0, 1.0))
        schedule = GainSchedule([list(gains)], (0.0, 1.0))  # the regime's gains for the whole episode
        timeout = max(1, round(float(self.cfg.task.waypoint_timeout_s) / self.dt))
        mission = WaypointMission(self.waypoints, float(self.cfg.task.reach_radius), timeout)
        max_steps = min(int(self.cfg.budget.max_steps), timeout * len(self.waypoints))
        metrics, _ = run_waypoint_episode(env, controller, cost, mission, schedule, max_steps, seed)
        return float(metrics["success_rate"])


class GoalTarget:
    """Manipulation envs with `set_params`, `explore`, and goal episodes reporting info["success"]."""

    def __init__(self, cfg: DictConfig, module: str, params_cls: str, cost_cls: type) -> None:
        import importlib

        self.cfg = cfg
        self.mod = importlib.import_module(module)
        self.params_cls = getattr(self.mod, params_cls)
        self.cost_cls = cost_cls

    def make_env(self) -> gym.Env:
        return gym.make(str(self.cfg.robot.env_id)).unwrapped

    def check(self, params: dict[str, Any], where: str) -> None:
        _regime(self.params_cls, params, where)

    def set_regime(self, env: gym.Env, params: dict[str, Any]) -> None:
        env.set_params(_regime(self.params_cls, params, "cl.tasks"))

    def collect(self, env: gym.Env, episodes: int, steps: int, seed: int) -> Transitions:
        states, actions, next_states = env.explore(episodes, steps, seed)
        as_t = lambda x: torch.as_tensor(np.asarray(x), dtype=torch.float32)  # noqa: E731
        return Transitions(as_t(states), as_t(actions), as_t(next_states))

    def make_cost(self):
        return self.cost_cls()

    def planner_success(self, env: gym.Env, controller: Controller, cost: Any, params: dict[str, Any],
                        seed: int) -> float:
        """Fraction of `cl.plan.episodes` goal episodes that succeed within `cl.plan.max_steps`."""
        wins = 0
        episodes = int(self.cfg.cl.plan.episodes)
        for ep in range(episodes):
            obs, info = env.reset(seed=seed * 1000 + ep)
            cost.set_goal(torch.as_tensor(info["goal"], dtype=torch.float32))
            controller.reset()
            for _ in range(int(self.cfg.cl.plan.max_steps)):
                action = controller.act(obs)
                obs, _, terminated, _, info = env.step(action.astype(np.float32))
                if info.get("success") or terminated:
                    break
            wins += int(bool(info.get("success")))
        return wins / max(episodes, 1)


class QuadTarget:
    """Quadrotor regimes via QuadParams (payload, motors, wind, gusts, gains); planner: fly to a goal
    about 1 m away and get within `cl.plan.reach` of it within `cl.plan.max_steps`."""

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg

    def make_env(self) -> gym.Env:
        return gym.make(str(self.cfg.robot.env_id), control_hz=1.0 / float(self.cfg.robot.dt)).unwrapped

    def check(self, params: dict[str, Any], where: str) -> None:
        from robocl_envs.quadrotor import QuadParams

        _regime(QuadParams, params, where)

    def set_regime(self, env: gym.Env, params: dict[str, Any]) -> None:
        from robocl_envs.quadrotor import QuadParams

        env.set_params(_regime(QuadParams, params, "cl.tasks"))

    def collect(self, env: gym.Env, episodes: int, steps: int, seed: int) -> Transitions:
        return collect_exploration(env, episodes, steps, seed=seed)

    def make_cost(self):
        from robocl.planning.costs import WaypointCost

        return WaypointCost(pos_dims=3)

    def planner_success(self, env: gym.Env, controller: Controller, cost: Any, params: dict[str, Any],
                        seed: int) -> float:
        rng = np.random.default_rng(seed)
        reach = float(self.cfg.cl.plan.reach)
        episodes = int(self.cfg.cl.plan.episodes)
        wins = 0
        for ep in range(episodes):
            obs, _ = env.reset(seed=seed * 1000 + ep, options={"pose": (0.0, 0.0, 1.0)})
            goal = np.array([rng.uniform(-1, 1), rng.uniform(-1, 1), 1.0 + rng.uniform(-0.3, 0.5)])
            cost.set_goal(torch.as_tensor(goal, dtype=torch.float32))
            controller.reset()
            for _ in range(int(self.cfg.cl.plan.max_steps)):
                action = controller.act(obs)
                obs, _, terminated, truncated, _ = env.step(action.astype(np.float32))
                if np.linalg.norm(obs[:3] - goal) < reach:
                    wins += 1
                    break
                if terminated or truncated:
                    break
        return wins / max(episodes, 1)


def make_target(cfg: DictConfig) -> CLTarget:
    kind = str(cfg.cl.target)
    if kind == "ugv":
        return UGVTarget(cfg)
    if kind == "pusher":
        return GoalTarget(cfg, "robocl_envs.pusher", "PusherParams", PushCost)
    if kind == "door":
        return GoalTarget(cfg, "robocl_envs.door", "DoorParams", DoorCost)
    if kind == "quadrotor":
        return QuadTarget(cfg)
    raise UsageError(f"cl.target={kind!r}: no such continual target; accepted: ugv, pusher, door, quadrotor")
