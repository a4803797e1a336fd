"""Planar pushing in MuJoCo (HyperCRL-style pusher) with run-time puck mass and friction.

Observation [finger x, y, vx, vy, puck x, y, vx, vy] (m, m/s, table frame); action: fingertip
velocity command in [-1, 1]^2, scaled to MAX_SPEED. A task is "push the puck to the goal"
(info["goal"], success within GOAL_TOL). `PusherParams` (puck mass, friction) is applied in place
by `set_params`, so a continual learner meets a new regime without a model reload.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from .mujoco_base import MujocoRobotEnv, mujoco

MAX_SPEED = 0.25  # m/s fingertip speed at |action| = 1
CONTROL_DT = 0.1  # s (10 Hz)
GOAL_TOL = 0.05  # m
G = 9.81
ARENA = 0.5  # m; the puck or finger leaving |x|, |y| <= ARENA ends the episode


@dataclass(frozen=True)
class PusherParams:
    """One regime: puck mass (kg) and table friction coefficient (Coulomb, mu)."""

    puck_mass: float = 0.4
    friction: float = 0.3

    def __post_init__(self) -> None:
        object.__setattr__(self, "puck_mass", float(self.puck_mass))
        object.__setattr__(self, "friction", float(self.friction))
        if not (math.isfinite(self.puck_mass) and 0.05 <= self.puck_mass <= 5.0):
            raise ValueError(f"PusherParams.puck_mass={self.puck_mass}: expected 0.05..5 kg")
        if not (math.isfinite(self.friction) and 0.0 <= self.friction <= 2.0):
            raise ValueError(f"PusherParams.friction={self.friction}: expected 0..2")



class PusherEnv(MujocoRobotEnv):
    """Fingertip pushes a puck to a goal; reward = -distance of the puck to the goal."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, params: PusherParams | None = None, render_mode: str | None = None,
                 camera: str = "top") -> None:
        self._load_mujoco("pusher.xml", render_mode, camera)
        self.nsub = round(CONTROL_DT / self.model.opt.timestep)
        self.dt = self.nsub * self.model.opt.timestep
        m = self.model
        self._puck = m.body("puck").id
        self._puck_dofs = np.array([m.joint("puck_x").dofadr[0], m.joint("puck_y").dofadr[0]])
        self._goal_site = m.site("goal").id
        self._nominal_inertia = m.body_inertia[self._puck].copy() / m.body_mass[self._puck]
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(8,), dtype=np.float64)
        self.goal = np.array([0.0, 0.2])
        self._params = PusherParams()
        self.set_params(params or PusherParams())

    @property
    def params(self) -> PusherParams:
        return self._params

    def set_params(self, params: PusherParams) -> None:
        if not isinstance(params, PusherParams):
            raise TypeError(f"set_params expects PusherParams, got {type(params).__name__}")
        m = self.model
        m.body_mass[self._puck] = params.puck_mass
        m.body_inertia[self._puck] = self._nominal_inertia * params.puck_mass
        m.dof_frictionloss[self._puck_dofs] = params.friction * params.puck_mass * G
        mujoco.mj_setConst(m, self._scratch)
        self._params = params

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """Puck near the origin, finger 12 cm behind it, goal 15-25 cm ahead (options['goal'])."""
        super().reset(seed=seed)
        rng = self.np_random
        mujoco.mj_resetData(self.model, self.data)
        q = self.data.qpos
        q[0:2] = rng.uniform(-0.02, 0.02, 2) + (0.0, -0.12)
        q[2:4] = rng.uniform(-0.02, 0.02, 2)
        goal = (options or {}).get("goal")
        self.goal = (np.asarray(goal, float) if goal is not None
                     else np.array([rng.uniform(-0.15, 0.15), rng.uniform(0.15, 0.25)]))
        self.model.site_pos[self._goal_site, :2] = self.goal
        mujoco.mj_forward(self.model, self.data)
        return self._obs(), {"goal": self.goal.copy(), "success": False}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = np.asarray(action, dtype=np.float64).reshape(2)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action={a!r}: must be finite")
        self.data.ctrl[:2] = np.clip(a, -1.0, 1.0) * MAX_SPEED
        mujoco.mj_step(self.model, self.data, nstep=self.nsub)
        obs = self._obs()
        dist = float(np.linalg.norm(obs[4:6] - self.goal))
        out = bool(np.any(np.abs(obs[[0, 1, 4, 5]]) > ARENA))
        return obs, -dist, out, False, {"goal": self.goal.copy(), "success": dist < GOAL_TOL}

    def _obs(self) -> np.ndarray:
        q, v = self.data.qpos, self.data.qvel
        return np.array([q[0], q[1], v[0], v[1], q[2], q[3], v[2], v[3]])

    def explore(self, episodes: int, steps: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Exploration that touches the puck: half the time the finger heads for a point behind the
        puck (random push direction), otherwise smooth random velocities; both with noise.

        Returns (states, actions, next_states) arrays; episodes end early if anything leaves the table.
        """
        rng = np.random.default_rng(seed)
        states, actions, nexts = [], [], []
        for ep in range(episodes):
            obs, _ = self.reset(seed=seed * 10_000 + ep)
            direction = rng.uniform(-math.pi, math.pi)
            random_a = rng.uniform(-1, 1, 2)
            for _ in range(steps):
                if rng.random() < 0.1:
                    direction = rng.uniform(0.0, math.pi) if rng.random() < 0.7 else rng.uniform(-math.pi, math.pi)
                if rng.random() < 0.3:
                    random_a = rng.uniform(-1, 1, 2)
                u = np.array([math.cos(direction), math.sin(direction)])
                target = obs[4:6] - 0.05 * u  # just behind the puck for a push along u
                to = target - obs[0:2]
                push = to / max(np.linalg.norm(to), 1e-6) if np.linalg.norm(to) > 0.01 else u
                a = push if rng.random() < 0.6 else random_a
                a = np.clip(a + rng.normal(0, 0.2, 2), -1, 1)
                nxt, _, out, _, _ = self.step(a)
                if not out:
                    states.append(obs)
                    actions.append(a)
                    nexts.append(nxt)
                    obs = nxt
                else:
                    obs, _ = self.reset(seed=int(rng.integers(1 << 30)))
        return np.asarray(states), np.asarray(actions), np.asarray(nexts)
