"""Reference-tracking episodes (quadrotor hover / figure eight / waypoints): a Controller tracks `reference(t)`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robocl.control import Controller
from robocl.planning.tracking import ReferenceTrackingCost


@dataclass
class TrackingTrace:
    times: list[float] = field(default_factory=list)
    states: list[np.ndarray] = field(default_factory=list)
    references: list[np.ndarray] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)
    regimes: list[str] = field(default_factory=list)


def run_tracking_episode(
    env: Any,
    controller: Controller,
    cost: ReferenceTrackingCost,
    reference: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    duration: float,
    horizon: int,
    seed: int,
    regime_at: Callable[[float], tuple[str, Any]] | None = None,
    on_step: Callable[[int, dict[str, Any]], None] | None = None,
) -> tuple[dict[str, Any], TrackingTrace]:
    """Track `reference(t)` for `duration` s; a crash ends the episode and counts in `crashes`.

    `regime_at(fraction)` returns (label, apply) where apply(env) switches the env's regime;
    it is called when the label changes (e.g. payload on at 15% of the episode, off at 80%).
    """
    obs, _ = env.reset(seed=seed)
    controller.reset()
    dt = float(env.dt)
    steps = int(round(duration / dt))
    trace = TrackingTrace()
    crashed = False
    label = ""
    for k in range(steps):
        t = k * dt
        if regime_at is not None:
            new_label, apply = regime_at(k / steps)
            if new_label != label:
                apply(env)
                label = new_label
        ref_pos, ref_vel = reference(t + dt * np.arange(1, horizon + 1))
        cost.set_reference(ref_pos, ref_vel)
        action = controller.act(obs)
        next_obs, _, terminated, _, info = env.step(action.astype(np.float32))
        controller.observe(obs, action, next_obs)
        now_ref = reference(np.array(t + dt))[0]
        err = float(np.linalg.norm(next_obs[:3] - now_ref))
        trace.times.append(t + dt)
        trace.states.append(next_obs)
        trace.references.append(now_ref)
        trace.errors.append(err)
        trace.regimes.append(label)
        if on_step:
            on_step(k, {"step": k, "t": t + dt, "regime": label, "error": err,
                        "x": float(next_obs[0]), "y": float(next_obs[1]), "z": float(next_obs[2])})
        obs = next_obs
        if terminated:
            crashed = bool(info.get("crash", True))
            break
    errors = np.asarray(trace.errors)
    metrics = {
        "tracking_rmse": float(np.sqrt(np.mean(errors**2))) if errors.size else None,
        "max_error": float(errors.max()) if errors.size else None,
        "crashes": int(crashed),
        "steps": len(errors),
        "completed": float(len(errors) / steps),
    }
    return metrics, trace
