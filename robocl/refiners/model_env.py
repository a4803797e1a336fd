"""A learned dynamics model as the simulator of AFM's training regimes, for a robot without one.

The AFM refiner is trained on many actuation regimes (command gains), which robocl normally
simulates in MuJoCo. A robot described only by a config file has no simulator, but it has the
nominal model `robocl-train` learned from its logs: this env steps that model (the ensemble mean,
plus the spread of one randomly drawn member so consecutive steps are not perfectly smooth), with
the regime's gains applied to the command the way the MuJoCo envs apply them (after clipping to
the action box). Episodes start at rest at the origin (planar robots) or hovering at 1 m
(quadrotor-layout robots): the regime episodes are short and the planned actions drive the state
into the run-time range within a few steps.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces

REST = {"planar": lambda n: np.zeros(n), "quadrotor": lambda n: np.r_[0.0, 0.0, 1.0, np.zeros(n - 3)]}
HOOKS = {"planar": "ugv", "quadrotor": "quadrotor"}  # afm_data's per-robot hooks (goals, pursuit, nuisances)


class LearnedModelEnv:
    """The subset of the robocl env API that `afm_data.generate` uses, backed by a DynamicsModel."""

    def __init__(self, model: Any, codec: str, action_low, action_high, noise: bool = True, seed: int = 0) -> None:
        if codec not in REST:
            raise ValueError(f"codec {codec!r}: a learned-model simulator needs a planar or quadrotor layout")
        self.model = model.eval()
        self.codec = codec
        low, high = np.asarray(action_low, np.float32), np.asarray(action_high, np.float32)
        self.action_space = spaces.Box(low, high, dtype=np.float32)
        self.gains = np.ones(low.size)
        self.noise = noise
        self.rng = np.random.default_rng(seed)
        self.state = REST[codec](model.codec.state_dim)

    def set_params(self, params: Any) -> None:
        """Physics nuisances need a physics simulator: the learned model has none (use physics_prob 0)."""

    def set_gains(self, gains) -> None:
        self.gains = np.asarray(gains, dtype=float)

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, dict]:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.state = REST[self.codec](self.model.codec.state_dim).astype(float)
        return self.state.copy(), {}

    @torch.inference_mode()
    def step(self, action) -> tuple[np.ndarray, float, bool, bool, dict]:
        low, high = self.action_space.low, self.action_space.high
        applied = np.clip(np.asarray(action, float), low, high) * self.gains
        s = torch.as_tensor(self.state, dtype=torch.float32)[None]
        a = torch.as_tensor(applied, dtype=torch.float32)[None]
        mean, var = self.model.predict(s, a)
        nxt = mean
        if self.noise:
            target = self.model.codec.targets(s, mean) + var.sqrt() * torch.randn(
                var.shape, generator=torch.Generator().manual_seed(int(self.rng.integers(1 << 31))))
            nxt = self.model.codec.integrate(s, target)
        self.state = nxt[0].double().numpy()
        finite = bool(np.all(np.isfinite(self.state)))
        return self.state.copy(), 0.0, not finite, False, {}
