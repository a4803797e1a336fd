"""Robots for continual task sequences: how to set a regime, collect data and score the planner.

Each target turns a regime (a dict of the env's physical parameters, from `cl.tasks[i].params`)
into an env setting, collects exploration data in it, and measures planner success on a short
task in it. The continual runner stays robot-agnostic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import robocl_envs  # noqa: F401  (registers the robocl/* environments)
import torch
from omegaconf import DictConfig
from torch import Tensor

from robocl.control import Controller
from robocl.data import collect_exploration
from robocl.dynamics.base import Transitions
from robocl.errors import UsageError
from robocl.robots.codec import DeltaCodec


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
        from robocl.rollouts import run_waypoint_episode
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


class QuadCodec(DeltaCodec):
    """Quadrotor state [pos, vel, roll/pitch/yaw, body rates]: features drop the position
    (translation invariance); targets are deltas with the yaw change wrapped."""

    def __init__(self) -> None:
        super().__init__(12, 4)
        self.feature_dim = 9

    def features(self, state: Tensor) -> Tensor:
        return state[..., 3:12]

    def targets(self, state: Tensor, next_state: Tensor) -> Tensor:
        from robocl.robots.codec import wrap_angle

        d = next_state - state
        return torch.cat([d[..., :8], wrap_angle(d[..., 8:9]), d[..., 9:]], dim=-1)

    def integrate(self, state: Tensor, target: Tensor) -> Tensor:
        from robocl.robots.codec import wrap_angle

        nxt = state + target
        return torch.cat([nxt[..., :8], wrap_angle(nxt[..., 8:9]), nxt[..., 9:]], dim=-1)


def quad_codec(robot_cfg: DictConfig) -> QuadCodec:
    """Codec factory (`robot.codec_factory`) for the quadrotor in the continual sequence."""
    return QuadCodec()


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


# ---- manipulation: codecs and planner costs --------------------------------------------------------
class PushCodec(DeltaCodec):
    """Pusher state [finger xy, finger v, puck xy, puck v]: features drop the absolute position
    (the puck relative to the finger and both velocities); targets are plain deltas."""

    def __init__(self) -> None:
        super().__init__(8, 2)
        self.feature_dim = 6

    def features(self, state: Tensor) -> Tensor:
        return torch.cat([state[..., 4:6] - state[..., 0:2], state[..., 2:4], state[..., 6:8]], dim=-1)


def push_codec(robot_cfg: DictConfig) -> PushCodec:
    """Codec factory (`robot.codec_factory`) for the pusher."""
    return PushCodec()


def delta_codec(robot_cfg: DictConfig) -> DeltaCodec:
    """Codec factory for robots whose model sees the whole state and predicts plain deltas (door)."""
    return DeltaCodec(int(robot_cfg.state_dim), int(robot_cfg.action_dim))


class PushCost:
    """Puck-to-goal distance (heavier at the end) plus the finger's distance to the point just
    behind the puck on the goal line, which is where a push toward the goal starts."""

    def __init__(self, behind: float = 0.055, approach_weight: float = 0.5, terminal_weight: float = 2.0) -> None:
        self.goal = torch.zeros(2)
        self.behind = behind
        self.approach_weight = approach_weight
        self.terminal_weight = terminal_weight

    def set_goal(self, goal: Tensor) -> None:
        self.goal = torch.as_tensor(goal, dtype=torch.float32)[:2]

    def __call__(self, states: Tensor, actions: Tensor) -> Tensor:
        finger, puck = states[:, 1:, 0:2], states[:, 1:, 4:6]
        to_goal = self.goal - puck
        dist = torch.linalg.vector_norm(to_goal, dim=-1)
        behind = puck - self.behind * to_goal / dist.clamp_min(1e-6)[..., None]
        approach = torch.linalg.vector_norm(finger - behind, dim=-1)
        return dist.sum(1) + self.terminal_weight * dist[:, -1] + self.approach_weight * approach.sum(1)


class DoorCost:
    """How far the leaf is short of the goal angle, plus the finger's distance to a push point on
    the leaf's -y face (at 60 % of the nominal width: the planner does not know the true size)."""

    def __init__(self, width: float = 0.30, approach_weight: float = 0.5, terminal_weight: float = 2.0) -> None:
        self.goal = torch.ones(1)
        self.width = width
        self.approach_weight = approach_weight
        self.terminal_weight = terminal_weight

    def set_goal(self, goal: Tensor) -> None:
        self.goal = torch.as_tensor(goal, dtype=torch.float32).reshape(-1)[:1]

    def __call__(self, states: Tensor, actions: Tensor) -> Tensor:
        angle, finger = states[:, 1:, 4], states[:, 1:, 0:2]
        short = torch.relu(self.goal[0] - angle)
        c, s = torch.cos(angle), torch.sin(angle)
        r = 0.6 * self.width
        point = torch.stack([r * c + 0.03 * s, r * s - 0.03 * c], dim=-1)
        approach = torch.linalg.vector_norm(finger - point, dim=-1)
        return short.sum(1) + self.terminal_weight * short[:, -1] + self.approach_weight * approach.sum(1)
