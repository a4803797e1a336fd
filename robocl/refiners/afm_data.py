"""AFM training data, made by simulating many dynamics regimes (nothing is downloaded).

Each regime episode drives the robot with smooth random *planned* actions. The *intended* action is
the one that realizes the planned transition in that regime: for actuation gains it is the planned
action divided by the gain (clipped to the action box), because the robot's low-level controller
then receives exactly the set-points the nominal robot would. Payload, friction and motor changes
ride along as nuisances the refiner must be robust to. Executed actions switch between intended
(what a working refiner sends) and raw planned (what is sent right after a regime switch), so the
context rows cover both. Each row of context holds (state features, executed action, regime error =
realized target - nominal model's prediction for the executed action).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from robocl.sim.data import smooth_random_actions


@dataclass
class AFMData:
    """Per-step samples grouped into regime episodes (contiguous index ranges)."""

    features: Tensor  # (N, F) current state features
    planned: Tensor  # (N, A)
    intended: Tensor  # (N, A)
    rows: Tensor  # (N, C) this step as a context row
    miss: Tensor  # (N,) RMS of (realized - predicted for planned) / err_scale
    executed_intended: Tensor  # (N,) bool, the intended action was executed
    regime: Tensor  # (N,) regime index
    starts: Tensor  # (R,)
    lengths: Tensor  # (R,)
    gains: Tensor  # (R, G) intervention gains of each regime
    nuisance: Tensor  # (R,) bool, physics differs from nominal

    def __len__(self) -> int:
        return self.features.shape[0]

    def subset(self, regimes: Tensor) -> AFMData:
        """The samples of the given regimes (re-indexed)."""
        parts = [torch.arange(int(self.starts[r]), int(self.starts[r] + self.lengths[r])) for r in regimes]
        idx = torch.cat(parts)
        lengths = self.lengths[regimes]
        starts = torch.cumsum(lengths, 0) - lengths
        new_regime = torch.repeat_interleave(torch.arange(len(regimes)), lengths)
        return AFMData(self.features[idx], self.planned[idx], self.intended[idx], self.rows[idx], self.miss[idx],
                       self.executed_intended[idx], new_regime, starts, lengths, self.gains[regimes],
                       self.nuisance[regimes])

    def split(self, val_fraction: float, seed: int = 0) -> tuple[AFMData, AFMData]:
        """(train, val) split by regime, so validation regimes are unseen."""
        nonempty = torch.nonzero(self.lengths > 0).flatten()
        r = nonempty.shape[0]
        perm = nonempty[torch.randperm(r, generator=torch.Generator().manual_seed(seed))]
        n_val = max(1, int(round(r * val_fraction))) if r > 1 else 0
        return self.subset(perm[n_val:].sort().values), self.subset(perm[:n_val].sort().values)

    def sample_context(self, idx: Tensor, context_size: int, generator: torch.Generator | None = None,
                       min_size: int = 1) -> tuple[Tensor, Tensor]:
        """Context rows (B, K, C) and mask (B, K): 1..K random steps of each sample's own regime."""
        b = idx.shape[0]
        reg = self.regime[idx]
        start, length = self.starts[reg], self.lengths[reg]
        pick = (torch.rand(b, context_size, generator=generator) * length[:, None]).long()
        rows = self.rows[start[:, None] + pick]
        size = torch.randint(min_size, context_size + 1, (b,), generator=generator)
        mask = torch.arange(context_size)[None] < size[:, None]
        return rows, mask

    def state_dict(self) -> dict[str, Tensor]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @staticmethod
    def from_state_dict(state: dict[str, Tensor]) -> AFMData:
        return AFMData(**state)


# ---- regimes ------------------------------------------------------------------------------------
def sample_gains(rng: np.random.Generator, dim: int, gain_range: tuple[float, float], negative_prob: float,
                 nominal_prob: float, holdout: list[list[float]], holdout_radius: float) -> np.ndarray:
    """Gains with log-uniform magnitudes, random signs; never within `holdout_radius` (max-norm)
    of a held-out pair, so those pairs test generalization."""
    if rng.random() < nominal_prob:
        return np.ones(dim)
    lo, hi = math.log(gain_range[0]), math.log(gain_range[1])
    for _ in range(1000):
        g = np.exp(rng.uniform(lo, hi, dim)) * np.where(rng.random(dim) < negative_prob, -1.0, 1.0)
        if not any(np.max(np.abs(g - np.asarray(h)[:dim])) < holdout_radius for h in holdout):
            return g
    raise ValueError("afm data: holdout_gains exclude the whole gain range")


@dataclass(frozen=True)
class RobotHooks:
    """What differs per robot when simulating AFM regimes: the physics nuisance, its nominal
    value, and the kind of *planned* action an MPC produces on that robot's tasks."""

    nuisance: Callable[[np.random.Generator, Any], Any]
    nominal: Callable[[], Any]
    pursue: Callable[[np.ndarray, np.ndarray], np.ndarray]
    new_goal: Callable[[np.random.Generator, np.ndarray], np.ndarray]
    goal_reached: float


def _ugv_nuisance(rng: np.random.Generator, node: Any):
    from robocl_envs.ugv import UGVParams

    return UGVParams(payload_kg=float(rng.uniform(0.0, float(node.get("max_payload_kg", 15.0)))),
                     friction=float(rng.uniform(0.6, 1.4)),
                     motor_strength=tuple(float(x) for x in rng.uniform(0.7, 1.3, 2)))


def _ugv_nominal():
    from robocl_envs.ugv import UGVParams

    return UGVParams()


def _ugv_goal(rng: np.random.Generator, obs: np.ndarray) -> np.ndarray:
    """A goal 1.5-6 m away, mostly ahead: waypoint courses make the planner drive forward."""
    angle = obs[2] + rng.normal(0.0, 1.2)
    return obs[:2] + rng.uniform(1.5, 6.0) * np.array([math.cos(angle), math.sin(angle)])


def _ugv_pursue(obs: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """Pure-pursuit (v, w) toward `goal`: the kind of plan an MPC produces on a waypoint course
    (full speed ahead, saturated turns), so the refiner sees run-time-like actions and states."""
    dx, dy = goal - obs[:2]
    heading = (math.atan2(dy, dx) - obs[2] + math.pi) % (2 * math.pi) - math.pi
    v = min(1.0, 0.8 * math.hypot(dx, dy)) * max(0.0, math.cos(heading))
    return np.array([v, 2.0 * heading])


def _quad_nuisance(rng: np.random.Generator, node: Any):
    from robocl_envs.quadrotor import QuadParams

    eff = np.ones(4)
    if rng.random() < 0.5:
        eff[rng.integers(4)] = rng.uniform(0.7, 1.0)
    return QuadParams(payload_frac=float(rng.uniform(0.0, float(node.get("max_payload_frac", 0.6)))),
                      motor_efficiency=tuple(float(e) for e in eff))


def _quad_nominal():
    from robocl_envs.quadrotor import QuadParams

    return QuadParams()


def _quad_goal(rng: np.random.Generator, obs: np.ndarray) -> np.ndarray:
    """A goal 0.5-2 m away inside the tasks' flight box (|x|, |y| <= 1.5 m, z in 0.6-1.6 m)."""
    for _ in range(100):
        goal = obs[:3] + rng.normal(0.0, 1.0, 3) * np.array([1.0, 1.0, 0.3])
        if np.all(np.abs(goal[:2]) <= 1.5) and 0.6 <= goal[2] <= 1.6:
            return goal
    return np.array([0.0, 0.0, 1.0])


def _quad_pursue(obs: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """Velocity set-points toward `goal` (P on position, saturated), little yaw: what the
    tracking MPC commands along a figure eight or between waypoints."""
    v = np.clip(1.2 * (goal - obs[:3]), -1.0, 1.0)
    return np.r_[v, -0.5 * obs[8]]


HOOKS = {
    "ugv": RobotHooks(_ugv_nuisance, _ugv_nominal, _ugv_pursue, _ugv_goal, goal_reached=0.5),
    "quadrotor": RobotHooks(_quad_nuisance, _quad_nominal, _quad_pursue, _quad_goal, goal_reached=0.15),
}


def generate(env: Any, model: Any, node: Any, progress: Callable[[int, int], None] | None = None,
             robot: str = "ugv", physics_prob: float | None = None) -> AFMData:
    """Simulate `node.regimes` regime episodes of `node.steps` steps in `env` (a robocl env with
    `set_params`/`set_gains`), labelled with the nominal `model`'s predictions.

    node keys: regimes, steps, seed, gain_range, negative_prob, nominal_prob, physics_prob,
    intended_prob, pursuit_prob (regimes whose planned actions pursue random goals rather than
    being smooth random), holdout_gains, holdout_radius, gain_dims (channels that get gains; the
    rest stay 1), max_payload_kg (UGV) / max_payload_frac (quadrotor) nuisances. `physics_prob`, if given,
    replaces node.physics_prob (0 for a learned model: it has no physics to perturb).
    """
    hooks = HOOKS[robot]
    rng = np.random.default_rng(int(node.seed))
    low, high = env.action_space.low.astype(float), env.action_space.high.astype(float)
    dim = low.size
    gain_dims = list(node.get("gain_dims") or range(dim))
    holdout = [list(map(float, h)) for h in (node.get("holdout_gains") or [])]
    n_regimes, steps = int(node.regimes), int(node.steps)
    s_all, sn_all, ap_all, ai_all, ae_all, mode_all, reg_all = [], [], [], [], [], [], []
    gains_all, nuisance_all = [], []
    for r in range(n_regimes):
        gains = np.ones(dim)
        gains[gain_dims] = sample_gains(rng, len(gain_dims), tuple(node.gain_range), float(node.negative_prob),
                                        float(node.nominal_prob), holdout, float(node.holdout_radius))
        nuisance = rng.random() < float(node.physics_prob if physics_prob is None else physics_prob)
        env.set_params(hooks.nuisance(rng, node) if nuisance else hooks.nominal())
        env.set_gains(tuple(gains))
        obs, _ = env.reset(seed=int(rng.integers(1 << 30)))
        random_actions = smooth_random_actions(rng, low, high, steps, hold_prob=0.8)
        pursuit = rng.random() < float(node.get("pursuit_prob", 0.0))
        goal = hooks.new_goal(rng, obs)
        use_intended = rng.random() < float(node.intended_prob)
        for t in range(steps):
            if pursuit:
                if np.linalg.norm(goal - obs[:goal.size]) < hooks.goal_reached or rng.random() < 0.07:
                    goal = hooks.new_goal(rng, obs)
                planned = np.clip(hooks.pursue(obs, goal) + rng.normal(0.0, 0.08, dim) * (high - low),
                                  low, high)
            else:
                planned = random_actions[t]
            intended = np.clip(planned / gains, low, high)
            if rng.random() < 0.1:
                use_intended = rng.random() < float(node.intended_prob)
            executed = intended if use_intended else planned
            next_obs, _, terminated, _, _ = env.step(executed.astype(np.float32))
            if np.all(np.isfinite(next_obs)) and not terminated:
                s_all.append(obs)
                sn_all.append(next_obs)
                ap_all.append(planned)
                ai_all.append(intended)
                ae_all.append(executed)
                mode_all.append(use_intended)
                reg_all.append(r)
            obs = next_obs
            if terminated:
                obs, _ = env.reset(seed=int(rng.integers(1 << 30)))
        gains_all.append(gains)
        nuisance_all.append(nuisance)
        if progress is not None:
            progress(r + 1, n_regimes)
    env.set_params(hooks.nominal())
    as_t = lambda x: torch.as_tensor(np.asarray(x), dtype=torch.float32)  # noqa: E731
    return label(model, as_t(s_all), as_t(sn_all), as_t(ap_all), as_t(ai_all), as_t(ae_all),
                 torch.as_tensor(mode_all), torch.as_tensor(reg_all, dtype=torch.long),
                 as_t(gains_all), torch.as_tensor(nuisance_all))


def generate_quadrotor(env: Any, model: Any, node: Any, progress: Callable[[int, int], None] | None = None
                       ) -> AFMData:
    """`generate` with the quadrotor's hooks (payload / weak-motor nuisances, velocity pursuit)."""
    return generate(env, model, node, progress, robot="quadrotor")


@torch.no_grad()
def label(model: Any, states: Tensor, next_states: Tensor, planned: Tensor, intended: Tensor, executed: Tensor,
          executed_intended: Tensor, regime: Tensor, gains: Tensor, nuisance: Tensor,
          batch: int = 8192) -> AFMData:
    """Context rows and planned-transition misses from the nominal model (batched)."""
    codec = model.codec
    err_scale = model.target_norm.std
    realized = codec.targets(states, next_states)
    rows, miss = [], []
    for i in range(0, states.shape[0], batch):
        s, sl = states[i:i + batch], slice(i, i + batch)
        pred_exec = model.predict(s, executed[sl])[0]
        pred_plan = model.predict(s, planned[sl])[0]
        regime_err = realized[sl] - codec.targets(s, pred_exec)
        rows.append(torch.cat([codec.features(s), executed[sl], regime_err], dim=-1))
        miss.append(((realized[sl] - codec.targets(s, pred_plan)) / err_scale).pow(2).mean(-1).sqrt())
    lengths = torch.bincount(regime, minlength=gains.shape[0])
    starts = torch.cumsum(lengths, 0) - lengths
    return AFMData(codec.features(states), planned, intended, torch.cat(rows), torch.cat(miss),
                   executed_intended, regime, starts, lengths, gains, nuisance)
