"""A MuJoCo robot behind ROS topics (`robocl-ros-sim`), without ROS: the transport is plugged in.

The robot stands still, publishing odometry at t=0, until the first command arrives (the node is up;
its first start may train the nominal model), at most `wait_for_node_s` wall seconds. Then, each
physics step of 1/odom_hz: publish odometry of the current state and then /clock (sim time), wait
until that much wall time has passed (divided by the real-time factor), then step the env with the
newest command (zero-order hold; zero after `cmd_timeout_s` of silence, as a real base does). The sim scores
the course it publishes (success rate = waypoints reached / total) and logs odometry-out and
command-in times on the steady clock, which every process on the machine shares, so end-to-end
latency can be measured across processes.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from robocl_ros.core import Mission
from robocl_ros.robots import RobotBinding

from robocl.tasks.waypoints import GainSchedule


class SimTransport(Protocol):
    def publish_odometry(self, state: np.ndarray, stamp: float) -> None: ...

    def publish_clock(self, t: float) -> None: ...

    def publish_course(self, points: np.ndarray) -> None: ...


@dataclass
class SimSettings:
    real_time_factor: float = 1.0  # sim seconds per wall second
    cmd_timeout_s: float = 0.5  # sim seconds without a command -> zero command
    max_time_s: float = 120.0  # sim seconds
    reach_radius: float = 0.5
    waypoint_timeout_s: float = 20.0
    nan_window: tuple[float, float] | None = None  # sim seconds [start, end): odometry fields set to NaN
    linger_s: float = 0.0  # wall seconds to keep publishing after the mission ends
    course_repeat_s: float = 1.0  # wall period of re-publishing the course
    wait_for_node_s: float = 300.0  # wall seconds to wait for the first command before giving up
    sim_time: bool = False  # stamps are sim time (and /clock is published) instead of the system clock


@dataclass
class SimLog:
    odom: list[tuple[float, float]] = field(default_factory=list)  # (header stamp, steady-clock publish time)
    cmds: list[tuple[float, ...]] = field(default_factory=list)  # (steady-clock receipt time, *command)


class SimCore:
    def __init__(self, env: Any, binding: RobotBinding, course: np.ndarray, settings: SimSettings,
                 transport: SimTransport, schedule: GainSchedule | None = None,
                 log: Callable[[str], None] = print) -> None:
        self.env = env
        self.binding = binding
        self.course = np.asarray(course, float)
        self.settings = settings
        self.transport = transport
        self.schedule = schedule
        self.log = log
        self.dt = float(env.dt)
        self.stop_event = threading.Event()
        self._cmd_lock = threading.Lock()
        self._cmd: np.ndarray | None = None
        self._cmd_t = -math.inf
        self.t = 0.0
        self.trace = SimLog()
        self.nonfinite_commands = 0
        self.crashed = False
        self.mission = Mission(self.course, settings.reach_radius,
                               max(1, round(settings.waypoint_timeout_s / self.dt)))

    def on_command(self, action: np.ndarray) -> None:
        """I/O thread: keep the newest command; count any that is not finite (must never happen)."""
        a = np.asarray(action, float)
        rx = time.monotonic()
        if not np.all(np.isfinite(a)):
            self.nonfinite_commands += 1
        with self._cmd_lock:
            self._cmd, self._cmd_t = a, self.t
        self.trace.cmds.append((rx, *a.tolist()))

    def _command(self) -> np.ndarray:
        zero = np.zeros(self.env.action_space.shape[0])
        with self._cmd_lock:
            cmd, at = self._cmd, self._cmd_t
        if cmd is None or self.t - at > self.settings.cmd_timeout_s or not np.all(np.isfinite(cmd)):
            return zero
        return np.clip(cmd, self.env.action_space.low, self.env.action_space.high)

    def _observed(self, state: np.ndarray) -> np.ndarray:
        win = self.settings.nan_window
        if win is not None and win[0] <= self.t < win[1]:
            bad = state.copy()
            bad[::2] = np.nan  # a corrupted driver message: several fields NaN
            return bad
        return state

    def _publish(self, obs: np.ndarray) -> float:
        """Odometry first, then /clock: a node ticking on /clock already has this state."""
        stamp = self.t if self.settings.sim_time else time.time()
        pub = time.monotonic()
        self.transport.publish_odometry(self._observed(obs), stamp)
        self.transport.publish_clock(self.t)
        self.trace.odom.append((stamp, pub))
        return pub

    def wait_for_node(self, obs: np.ndarray) -> None:
        """Stand still at t=0, publishing odometry and the course, until a command arrives."""
        waited0 = time.monotonic()
        period = self.dt / self.settings.real_time_factor
        while not self.stop_event.is_set():
            with self._cmd_lock:
                if self._cmd is not None:
                    self.log(f"robocl-ros-sim: first command after {time.monotonic() - waited0:.1f}s, starting")
                    return
            if time.monotonic() - waited0 > self.settings.wait_for_node_s:
                raise TimeoutError(f"no command from the node within ros.sim.wait_for_node_s="
                                   f"{self.settings.wait_for_node_s:g} s")
            self.transport.publish_course(self.course)
            self._publish(obs)
            self.stop_event.wait(period)

    def run(self, seed: int = 0) -> dict[str, Any]:
        obs, _ = self.env.reset(seed=seed)
        start_xy = obs[: self.binding.pos_dims].copy()
        self.wait_for_node(obs)
        self.trace = SimLog()  # measure from the start of the course
        last_course = time.monotonic()
        wall0 = time.monotonic()
        path = [obs[: self.binding.pos_dims].copy()]
        ended_at: float | None = None
        while not self.stop_event.is_set():
            pub = self._publish(obs)
            if pub - last_course >= self.settings.course_repeat_s and ended_at is None:
                self.transport.publish_course(self.course)
                last_course = pub
            if ended_at is not None and pub - ended_at >= self.settings.linger_s:
                break
            rate = self.settings.real_time_factor
            wake = wall0 + (self.t + self.dt) / rate if rate > 0 else pub
            delay = wake - time.monotonic()
            if delay > 0 and self.stop_event.wait(delay):
                break
            if ended_at is not None:  # lingering: hold still, keep publishing
                self.t += self.dt
                continue
            if self.schedule is not None:
                self.env.set_gains(self.schedule.at(self.mission.progress))
            obs, _, terminated, _, info = self.env.step(self._command().astype(np.float32))
            self.t += self.dt
            event = self.mission.update(obs)
            path.append(obs[: self.binding.pos_dims].copy())
            if event:
                self.log(f"robocl-ros-sim: t={self.t:.2f}s waypoint {self.mission.index}/{len(self.course)} {event}")
            crash = bool(terminated and (info.get("crash", True) if isinstance(info, dict) else True))
            if crash or self.mission.done or self.t >= self.settings.max_time_s:
                self.crashed = crash
                ended_at = time.monotonic()
                why = "crashed" if crash else ("course done" if self.mission.done else "time limit")
                self.log(f"robocl-ros-sim: {why} at t={self.t:.2f}s, success {self.mission.success_rate:.2f}")
        wall = time.monotonic() - wall0
        from robocl.tasks.tracking import tracking_rmse

        return {
            "success_rate": self.mission.success_rate,
            "waypoints_reached": int(sum(self.mission.reached)),
            "waypoints_total": len(self.course),
            "tracking_rmse": tracking_rmse(np.asarray(path)[:, :2], self.course[:, :2], start_xy[:2]),
            "crashes": int(self.crashed),
            "sim_time_s": self.t,
            "wall_s": wall,
            "real_time_factor": self.t / wall if wall > 0 else None,
            "commands_received": len(self.trace.cmds),
            "nonfinite_commands": self.nonfinite_commands,
        }
