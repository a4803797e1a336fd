"""Simulation episodes: a Controller drives a robot through a waypoint mission."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from robocl.control import Controller
from robocl.offline.metrics import label_changes
from robocl.planning.costs import WaypointCost
from robocl.tasks.tracking import distance_to_polyline, recovery_steps, tracking_rmse
from robocl.tasks.waypoints import GainSchedule, WaypointMission


@dataclass
class EpisodeTrace:
    """What happened, step by step (for plots, CSV logs and recordings)."""

    states: list[np.ndarray] = field(default_factory=list)
    actions: list[np.ndarray] = field(default_factory=list)
    regimes: list[str] = field(default_factory=list)
    events: list[tuple[int, str]] = field(default_factory=list)


def run_waypoint_episode(
    env: Any,
    controller: Controller,
    cost: WaypointCost,
    mission: WaypointMission,
    schedule: GainSchedule,
    max_steps: int,
    seed: int,
    on_step: Callable[[int, dict[str, Any]], None] | None = None,
    observation_filter: Callable[[int, np.ndarray], np.ndarray] | None = None,
    recovery_threshold: float = 0.5,
    recovery_hold: int = 10,
) -> tuple[dict[str, Any], EpisodeTrace]:
    """Run until every waypoint is reached or skipped, the robot crashes, or `max_steps`.

    `observation_filter(step, obs)` lets tests inject sensor faults (e.g. NaNs) between the
    simulator and the controller, exactly where a real sensor fault would appear.

    Time to recover: after each regime change j (the intervention's start, its end, ...),
    `recovery_steps_c{j}` counts the steps until the robot is back on course, i.e. within
    `recovery_threshold` m of the leg it is driving (previous waypoint -> current goal) for
    `recovery_hold` consecutive steps (None: it never came back).
    """
    obs, _ = env.reset(seed=seed)
    controller.reset()
    trace = EpisodeTrace()
    start = obs.copy()
    off_leg: list[float] = []  # distance to the leg being driven, after each step
    crashed = False
    regime = schedule.label(0.0)
    for step in range(max_steps):
        gains = schedule.at(mission.progress)
        env.set_gains(gains)
        regime = schedule.label(mission.progress)
        cost.set_goal(torch.as_tensor(mission.goal, dtype=torch.float32))
        leg = np.stack([mission.waypoints[mission.index - 1] if mission.index else start[:2], mission.goal])
        seen = observation_filter(step, obs) if observation_filter else obs
        action = controller.act(seen)
        next_obs, _, terminated, truncated, _ = env.step(action.astype(np.float32))
        controller.observe(seen, action, next_obs)
        off_leg.append(float(distance_to_polyline(np.asarray(next_obs[None, :2], dtype=float), leg)[0]))
        event = mission.update(next_obs[:2])
        trace.states.append(obs)
        trace.actions.append(action)
        trace.regimes.append(regime)
        if event:
            trace.events.append((step, event))
        if on_step:
            on_step(step, {"step": step, "waypoint": mission.index, "regime": regime, "event": event or "",
                           "x": float(next_obs[0]), "y": float(next_obs[1]), "yaw": float(next_obs[2]),
                           "v_cmd": float(action[0]), "w_cmd": float(action[1]),
                           "plan_ms": controller.stats.plan_ms[-1] if controller.stats.plan_ms else None})
        obs = next_obs
        if terminated:
            crashed = True
            break
        if mission.done or truncated:
            break
    trace.states.append(obs)
    path = np.asarray(trace.states)
    metrics = {
        "success_rate": mission.success_rate,
        "waypoints_reached": int(sum(mission.reached)),
        "waypoints_total": len(mission.waypoints),
        "tracking_rmse": tracking_rmse(path, mission.waypoints, start),
        "crashes": int(crashed),
        "steps": len(trace.actions),
    }
    on_course = np.asarray(off_leg) <= recovery_threshold
    for j, change in enumerate(label_changes(trace.regimes), 1):
        metrics[f"recovery_steps_c{j}"] = recovery_steps(on_course, change.index, recovery_hold,
                                                          finished=mission.done)
    return metrics, trace
