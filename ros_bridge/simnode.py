"""`robocl-ros-sim`: the MuJoCo UGV or quadrotor behind ROS topics, for testing the node end to end.

Publishes odometry (and /clock with `ros.use_sim_time=true`, accelerated by
`ros.sim.real_time_factor`) and the course (`task.map`, latched), takes the robot's command, scores
the course and writes results.json (success_rate, ...) plus odom_log.csv / cmd_log.csv (steady-clock
times) to the run dir. Ends when the course is done, at `ros.sim.max_time_s` or on SIGINT/SIGTERM.
"""

from __future__ import annotations

import signal
import threading
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf
from robocl_ros import RosUnavailable
from robocl_ros.node import binding_for, log, transport_classes
from robocl_ros.sim import SimCore, SimSettings

from robocl.build import checks as check
from robocl.errors import UsageError
from robocl.tasks.waypoints import GainSchedule


def course(cfg: DictConfig) -> np.ndarray:
    from robocl_envs.courses import CourseError, load_course

    names = check.string_list(cfg, "task.map")
    shipped = files("robocl_ros").joinpath("courses", f"{names[0]}.csv")
    try:
        points = load_course(str(shipped) if shipped.is_file() else names[0])
    except CourseError as exc:
        raise UsageError(str(exc)) from None
    laps = int(check.number(cfg, "ros.sim.laps", lo=1, hi=1000, integer=True))
    # there and back again, without repeating the turning points
    points = np.vstack([points, *((points[::-1] if k % 2 else points)[1:] for k in range(1, laps))])
    if cfg.robot.name == "quadrotor":
        z = check.number(cfg, "ros.sim.altitude", lo=0.2, hi=10)
        points = np.column_stack([points, np.full(len(points), z)])
    return points


def validate(cfg: DictConfig) -> dict[str, Any]:
    binding = binding_for(cfg)
    transport = str(check.get(cfg, "ros.transport"))
    if transport not in ("ros2", "ros1"):
        raise UsageError(f"ros.transport={transport}: accepted: ros2, ros1")
    hz = check.number(cfg, "ros.sim.odom_hz", lo=1, hi=500)
    window = cfg.ros.sim.nan_window
    nan_window = tuple(check.number_list(cfg, "ros.sim.nan_window", length=2)) if window is not None else None
    settings = SimSettings(
        real_time_factor=check.number(cfg, "ros.sim.real_time_factor", lo=0, lo_open=True, hi=100),
        cmd_timeout_s=check.number(cfg, "ros.sim.cmd_timeout_s", lo=0, lo_open=True),
        max_time_s=check.number(cfg, "ros.sim.max_time_s", lo=0, lo_open=True),
        reach_radius=check.number(cfg, "task.reach_radius", lo=0, lo_open=True),
        waypoint_timeout_s=check.number(cfg, "task.waypoint_timeout_s", lo=0, lo_open=True),
        nan_window=nan_window,
        linger_s=check.number(cfg, "ros.sim.linger_s", lo=0),
        wait_for_node_s=check.number(cfg, "ros.sim.wait_for_node_s", lo=0, lo_open=True),
        sim_time=bool(cfg.ros.use_sim_time))
    gains = check.pair_list(cfg, "task.gains", dim=4 if binding.name == "quadrotor" else 2)
    waypoints = course(cfg)  # the whole config is checked before ROS is looked for
    params = physics(cfg, binding.name)
    try:
        transport_classes(transport)
    except RosUnavailable as exc:
        raise UsageError(str(exc)) from None
    return {"binding": binding, "hz": hz, "settings": settings, "course": waypoints, "gains": gains,
            "physics": params}


def physics(cfg: DictConfig, robot: str) -> Any:
    """The robot's physical regime for the whole run, from `task.physics`: `QuadParams` for the quadrotor
    (payload_frac, motor_efficiency, wind, gust_std), `UGVParams` for the UGV, as robocl-run reads them."""
    if robot == "quadrotor":
        from robocl.robots.quadrotor import QUAD_PHYSICS_KEYS, regime_params

        node = OmegaConf.to_container(cfg.task.physics, resolve=True) if cfg.task.get("physics") else {}
        return regime_params({k: v for k, v in node.items() if k in QUAD_PHYSICS_KEYS})
    from robocl_envs.ugv import UGVParams

    # as robocl-run's ugv_continual reads it (not imported: it pulls in plotting)
    return UGVParams(
        payload_kg=check.number(cfg, "task.physics.payload_kg", lo=0),
        friction=check.number(cfg, "task.physics.friction", lo=0, lo_open=True),
        wheel_radius_scale=tuple(check.number_list(cfg, "task.physics.wheel_radius_scale", length=2)),
        motor_strength=tuple(check.number_list(cfg, "task.physics.motor_strength", length=2)),
    )


def make_env(robot: str, hz: float, params: Any):
    if robot == "quadrotor":
        from robocl_envs.quadrotor import QuadrotorEnv

        try:
            return QuadrotorEnv(params, control_hz=hz, task="hover")
        except ValueError as exc:
            raise UsageError(f"ros.sim.odom_hz={hz:g}: {exc}") from None
    from robocl_envs.ugv import UGVEnv

    try:
        env = UGVEnv(dt=1.0 / hz)
    except ValueError as exc:
        raise UsageError(f"ros.sim.odom_hz={hz:g}: {exc}") from None
    env.set_params(params)
    return env


def run_sim(cfg: DictConfig, run_dir: Path, ros_args: list[str]) -> int:
    from robocl.eval.sink import ResultSink
    from robocl.utils.io import atomic_write_text

    spec = validate(cfg)
    binding = spec["binding"]
    env = make_env(binding.name, spec["hz"], spec["physics"])
    _, sim_cls = transport_classes(str(cfg.ros.transport))
    topics = {"odom": str(cfg.ros.topics.odom), "waypoints": str(cfg.ros.topics.waypoints),
              "command": str(cfg.ros.topics.command or binding.default_command_topic)}
    frames = {"world": str(cfg.ros.frames.world), "body": str(cfg.ros.frames.body)}
    transport = sim_cls(str(cfg.ros.sim.node_name), binding, topics, frames, ros_args, bool(cfg.ros.use_sim_time))
    schedule = GainSchedule(spec["gains"], list(cfg.task.intervention))
    sim = SimCore(env, binding, spec["course"], spec["settings"], transport, schedule, log)
    try:
        transport.attach(sim)
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: sim.stop_event.set())
        log(f"robocl-ros-sim: {binding.name} on {cfg.ros.transport}, odometry {topics['odom']} at "
            f"{spec['hz']:g} Hz, command {topics['command']}, {len(spec['course'])} waypoints, "
            f"x{spec['settings'].real_time_factor:g} real time{' (sim time /clock)' if cfg.ros.use_sim_time else ''}")
        metrics = sim.run(seed=int(cfg.ros.sim.seed))
    finally:
        transport.close()
    sink = ResultSink(run_dir, "ros-sim", str(cfg.experiment_name), lambda: OmegaConf.to_container(cfg, resolve=True))
    sink.add_run({"method": "ros-sim", "seed": int(cfg.ros.sim.seed), "task": f"{cfg.ros.transport}-{binding.name}",
                  **metrics})
    atomic_write_text(run_dir / "odom_log.csv",
                      "stamp,pub\n" + "".join(f"{t:.6f},{p:.6f}\n" for t, p in sim.trace.odom))
    cmds = "".join(f"{r[0]:.6f},{' '.join(f'{v:.6g}' for v in r[1:])}\n" for r in sim.trace.cmds)
    atomic_write_text(run_dir / "cmd_log.csv", "rx,cmd\n" + cmds)
    log("robocl-ros-sim: " + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                       for k, v in metrics.items() if v is not None))
    return 0
