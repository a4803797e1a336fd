"""Planar door opening in MuJoCo (HyperCRL-style door) with run-time hinge damping and leaf size.

Observation [finger x, y, vx, vy, door angle, angular velocity]; action: fingertip velocity
command in [-1, 1]^2 scaled to MAX_SPEED. The hinge is at the origin and the closed leaf lies
along +x; pushing its -y face opens it. A task is "open to the goal angle" (info["goal"] = [rad]).
`DoorParams` (damping, width scale) is applied in place by `set_params`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from .mujoco_base import MujocoRobotEnv, mujoco

MAX_SPEED = 0.25  # m/s
CONTROL_DT = 0.1  # s
NOMINAL_WIDTH = 0.30  # m
GOAL_ANGLE = 1.0  # rad (57 deg)
ARENA = 0.5  # m


@dataclass(frozen=True)
class DoorParams:
    """One regime: hinge damping (N m s/rad) and leaf width as a scale of the nominal 0.30 m."""

    damping: float = 0.2
    size: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "damping", float(self.damping))
        object.__setattr__(self, "size", float(self.size))
        if not (math.isfinite(self.damping) and 0.0 <= self.damping <= 10.0):
            raise ValueError(f"DoorParams.damping={self.damping}: expected 0..10 N m s/rad")
        if not (math.isfinite(self.size) and 0.5 <= self.size <= 1.6):
            raise ValueError(f"DoorParams.size={self.size}: expected a width scale in 0.5..1.6")



class DoorEnv(MujocoRobotEnv):
    """Fingertip pushes a hinged leaf open; reward = opening angle reached (rad)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, params: DoorParams | None = None, render_mode: str | None = None,
                 camera: str = "top") -> None:
        self._load_mujoco("door.xml", render_mode, camera)
        self.nsub = round(CONTROL_DT / self.model.opt.timestep)
        self.dt = self.nsub * self.model.opt.timestep
        m = self.model
        self._leaf = m.body("leaf").id
        self._leaf_geom = m.geom("leaf").id
        self._hinge_dof = m.joint("hinge").dofadr[0]
        self._nominal_size = m.geom_size[self._leaf_geom].copy()
        self._nominal_mass = float(m.body_mass[self._leaf])
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        high = np.array([np.inf] * 4 + [math.pi, np.inf])
        self.observation_space = spaces.Box(-high, high, dtype=np.float64)
        self.goal = np.array([GOAL_ANGLE])
        self._params = DoorParams()
        self.set_params(params or DoorParams())

    @property
    def params(self) -> DoorParams:
        return self._params

    def set_params(self, params: DoorParams) -> None:
        """Damping of the hinge; width, mass (area density kept) and inertia of the leaf."""
        if not isinstance(params, DoorParams):
            raise TypeError(f"set_params expects DoorParams, got {type(params).__name__}")
        m, g = self.model, self._leaf_geom
        m.dof_damping[self._hinge_dof] = params.damping
        size = self._nominal_size.copy()
        size[0] *= params.size
        a, b, c = 2 * size
        mass = self._nominal_mass * params.size
        m.geom_size[g] = size
        m.geom_pos[g, 0] = size[0]
        m.geom_rbound[g] = float(np.linalg.norm(size))
        m.geom_aabb[g, 3:6] = size
        m.body_mass[self._leaf] = mass
        m.body_ipos[self._leaf] = (size[0], 0.0, 0.0)
        m.body_iquat[self._leaf] = (1.0, 0.0, 0.0, 0.0)
        m.body_inertia[self._leaf] = mass / 12.0 * np.array([b * b + c * c, a * a + c * c, a * a + b * b])
        mujoco.mj_setConst(m, self._scratch)
        self._params = params

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """Door closed, finger 8 cm in front of the leaf's middle (noise 2 cm); goal options['goal']."""
        super().reset(seed=seed)
        mujoco.mj_resetData(self.model, self.data)
        q = self.data.qpos
        q[1:3] = self.np_random.uniform(-0.02, 0.02, 2) + (0.5 * NOMINAL_WIDTH, -0.08)
        goal = (options or {}).get("goal")
        self.goal = np.array([float(goal[0]) if goal is not None else GOAL_ANGLE])
        mujoco.mj_forward(self.model, self.data)
        return self._obs(), {"goal": self.goal.copy(), "success": False}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = np.asarray(action, dtype=np.float64).reshape(2)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action={a!r}: must be finite")
        self.data.ctrl[:2] = np.clip(a, -1.0, 1.0) * MAX_SPEED
        mujoco.mj_step(self.model, self.data, nstep=self.nsub)
        obs = self._obs()
        out = bool(np.any(np.abs(obs[0:2]) > ARENA))
        return obs, float(obs[4]), out, False, {"goal": self.goal.copy(), "success": bool(obs[4] >= self.goal[0])}

    def _obs(self) -> np.ndarray:
        q, v = self.data.qpos, self.data.qvel
        return np.array([q[1], q[2], v[1], v[2], q[0], v[0]])

    def explore(self, episodes: int, steps: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Exploration that opens the door: most of the time the finger heads for a random point on
        the leaf's -y face and pushes through it; otherwise smooth random velocities; with noise."""
        rng = np.random.default_rng(seed)
        states, actions, nexts = [], [], []
        for ep in range(episodes):
            obs, _ = self.reset(seed=seed * 10_000 + ep)
            frac = rng.uniform(0.2, 1.0)
            random_a = rng.uniform(-1, 1, 2)
            for _ in range(steps):
                if rng.random() < 0.08:
                    frac = rng.uniform(0.2, 1.0)
                if rng.random() < 0.3:
                    random_a = rng.uniform(-1, 1, 2)
                angle = obs[4]
                along = np.array([math.cos(angle), math.sin(angle)])
                normal = np.array([-math.sin(angle), math.cos(angle)])  # leaf's +y face normal
                contact = frac * NOMINAL_WIDTH * along - 0.03 * normal
                to = contact - obs[0:2]
                push = to / np.linalg.norm(to) if np.linalg.norm(to) > 0.015 else normal
                a = push if rng.random() < 0.7 else random_a
                a = np.clip(a + rng.normal(0, 0.2, 2), -1, 1)
                nxt, _, out, _, _ = self.step(a)
                if not out:
                    states.append(obs)
                    actions.append(a)
                    nexts.append(nxt)
                    obs = nxt
                else:
                    obs, _ = self.reset(seed=int(rng.integers(1 << 30)))
                if obs[4] > 1.7:  # wide open: start over so closed-door pushes stay in the data
                    obs, _ = self.reset(seed=int(rng.integers(1 << 30)))
        return np.asarray(states), np.asarray(actions), np.asarray(nexts)
