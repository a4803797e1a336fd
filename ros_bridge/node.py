"""`robocl-ros`: build the onboard node from the config and run it until SIGINT/SIGTERM.

Order: validate the config (no ROS needed, a typo costs nothing) -> start the transport and read the
ROS parameters -> fill the caches (`nominal_models`: the cached nominal model unless a saved on-board
checkpoint replaces it, and the AFM refiner for an _afm method; each trained on first use) -> build the
Controller from them (`build_controller`: it only builds) -> subscribe -> control loop. On shutdown the
strategy (model + optimizer) is checkpointed atomically and results.json / cycles.csv are written to the
run dir.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from robocl_ros import RosUnavailable
from robocl_ros.params import apply, defaults
from robocl_ros.robots import BINDINGS, RobotBinding, make_cost

from robocl.build import checks as check
from robocl.errors import UsageError

TRANSPORTS = ("ros2", "ros1")


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


CODEC_BINDINGS = {"planar": "ugv", "quadrotor": "quadrotor"}


def binding_for(cfg: DictConfig) -> RobotBinding:
    """The message binding of the robot's state layout: any planar robot (a user's robot file with
    `codec: planar` too) drives like the UGV, any `codec: quadrotor` robot like the quadrotor."""
    name = str(check.get(cfg, "robot.name"))
    codec = str(cfg.robot.get("codec") or "")
    if name in BINDINGS:
        return BINDINGS[name]
    if codec in CODEC_BINDINGS:
        return BINDINGS[CODEC_BINDINGS[codec]]
    raise UsageError(f"robot={name} (codec {codec or None}): the ROS bridge drives robots with codec "
                     f"{' or '.join(CODEC_BINDINGS)} (nav_msgs/Odometry in, Twist / TwistStamped out)")


def resolve(cfg: DictConfig) -> dict[str, Any]:
    """Fill the config's derived defaults in place and check every node setting; returns the ROS params."""
    binding = binding_for(cfg)
    transport = str(check.get(cfg, "ros.transport"))
    if transport not in TRANSPORTS:
        raise UsageError(f"ros.transport={transport}: accepted: {', '.join(TRANSPORTS)}")
    from robocl.build.methods import check_planner, check_refiner, parse_method

    # the method names the planner class, planner= its settings: planner=cem ros.method=mppi_online is an error;
    # an _afm method refines with refiner=, which must be afm (as in robocl-run)
    methods = [parse_method(str(check.get(cfg, "ros.method")))]
    check_planner(cfg, methods, key="ros.method")
    check_refiner(cfg, methods, key="ros.method")
    from robocl.build.models import adopt_model_settings, model_path
    from robocl.dynamics.artifact import file_fingerprint

    dt = check.number(cfg, "robot.dt", lo=0, lo_open=True)
    adopt_model_settings(cfg)  # model=PATH: checked against the robot; its dynamics settings apply
    with open_dict(cfg):
        if cfg.ros.rate_hz is None:
            cfg.ros.rate_hz = 1.0 / dt
        rate = check.number(cfg, "ros.rate_hz", lo=0.5, hi=500)
        if cfg.ros.watchdog.odom_timeout_s is None:
            cfg.ros.watchdog.odom_timeout_s = 1.0 / rate
        if cfg.ros.watchdog.plan_deadline_s is None:
            cfg.ros.watchdog.plan_deadline_s = 0.8 / rate
        if cfg.ros.topics.command is None:
            cfg.ros.topics.command = binding.default_command_topic
        if cfg.ros.checkpoint.path is None:
            # a node started from a robocl-train model keeps its on-board learning apart from other models'
            tag = f"-{file_fingerprint(model_path(cfg))}" if model_path(cfg) is not None else ""
            cfg.ros.checkpoint.path = str(Path(str(cfg.runtime.cache_dir)) / "ros" /
                                          f"{cfg.robot.name}-{cfg.dynamics.kind}{tag}-node.pt")
    values = defaults(cfg)
    check_learning(cfg, values)
    check_budget(values)
    check.number(cfg, "ros.status_period_s", lo=0, lo_open=True)
    check.number(cfg, "ros.regime.factor", lo=1, lo_open=True)
    for key in ("ros.regime.window", "ros.regime.warmup", "ros.seed"):
        check.number(cfg, key, lo=0 if key == "ros.seed" else 1, integer=True)
    if int(cfg.ros.regime.warmup) < int(cfg.ros.regime.window):
        raise UsageError(f"ros.regime.warmup={cfg.ros.regime.warmup}: must be >= ros.regime.window "
                         f"({cfg.ros.regime.window})")
    check.number(cfg, "task.waypoint_timeout_s", lo=0, lo_open=True)
    return values


def check_learning(cfg: DictConfig, values: dict[str, Any]) -> None:
    rate, dt = float(values["rate_hz"]), float(cfg.robot.dt)
    if values["learn"] and abs(rate * dt - 1.0) > 1e-6:
        raise UsageError(f"ros.rate_hz={rate:g}: learning needs transitions one robot.dt={dt:g} s apart, i.e. "
                         f"rate_hz={1 / dt:g}; set ros.learn=false to run at another rate")


def check_budget(values: dict[str, Any]) -> None:
    if int(values["overrun_limit"]) > int(values["overrun_window"]):
        raise UsageError(f"overrun_limit={values['overrun_limit']}: must be <= overrun_window "
                         f"({values['overrun_window']}), the plans it is counted over")


def transport_classes(name: str):
    """(node transport, sim transport) classes; RosUnavailable -> one-line install hint."""
    if name == "ros2":
        from robocl_ros import ros2

        ros2.import_rclpy()
        return ros2.Ros2NodeTransport, ros2.Ros2SimTransport
    from robocl_ros import ros1

    ros1.import_rospy()
    return ros1.Ros1NodeTransport, ros1.Ros1SimTransport


def validate(cfg: DictConfig) -> None:
    resolve(cfg)
    try:
        transport_classes(str(cfg.ros.transport))
    except RosUnavailable as exc:
        raise UsageError(str(exc)) from None


def nominal_models(cfg: DictConfig) -> tuple[Any, dict | None, Any]:
    """The node's cache-filling step, before anything is built: (base model, on-board checkpoint state or
    None, AFM refiner network or None). The base is the cached nominal model robocl-run plans with (pretrained
    on a cache miss), or, when an on-board checkpoint is saved, a fresh model its state is loaded into; an
    _afm ros.method gets the refiner trained against the nominal model (trained on a cache miss)."""
    from robocl.build.methods import parse_method
    from robocl.build.models import make_model
    from robocl.build.pretrained import pretrained_model
    from robocl.build.refiners import ensure_refiner

    method = parse_method(str(cfg.ros.method))
    path = Path(str(cfg.ros.checkpoint.path))
    state = None
    nominal = None
    if bool(cfg.ros.checkpoint.load) and path.exists():
        state = torch.load(path, map_location="cpu", weights_only=False)
    if state is None or method.refine:
        nominal, _ = pretrained_model(cfg, log=log)  # the same cached nominal model robocl-run plans with
    base = make_model(cfg) if state is not None else nominal
    refiner = ensure_refiner(cfg.refiner, cfg.robot, nominal, log=log) if method.refine else None
    return base, state, None if refiner is None else refiner.net


def build_controller(cfg: DictConfig, binding: RobotBinding, base: Any, state: dict | None, refiner_net: Any = None):
    """(controller, set_goal, loaded_checkpoint) from what `nominal_models` filled: it only builds (the
    on-board checkpoint's state goes into the strategy); it never simulates or trains."""
    from robocl.build.controller import excitation_spec, excite, make_controller
    from robocl.build.methods import parse_method

    method = parse_method(str(cfg.ros.method))
    cost, set_goal_fn = make_cost(binding.name, int(cfg.planner.horizon))
    path = Path(str(cfg.ros.checkpoint.path))
    # excitation.std > 0: the commands sent carry the identification dither (for a log robocl-train fits)
    controller = excite(cfg, make_controller(cfg, method, base, cost, int(cfg.ros.seed), refiner_net),
                        excitation_spec(cfg), int(cfg.ros.seed))
    if state is not None:
        try:
            controller.strategy.load_state_dict(state["strategy"])
        except (KeyError, RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(f"ros.checkpoint.path={path}: does not fit this model/strategy ({first}); move it "
                             "away or set ros.checkpoint.load=false") from None
        controller.model.eval()
        log(f"robocl-ros: loaded on-board checkpoint {path} "
            f"({state.get('meta', {}).get('learned_transitions', '?')} transitions learned last run)")
    return controller, (lambda goal: set_goal_fn(cost, goal)), state is not None


def run_node(cfg: DictConfig, run_dir: Path, ros_args: list[str]) -> int:
    from robocl_ros.core import NodeCore, NodeSettings, RegimeMonitor, SimClock, WallClock

    from robocl.eval.sink import ResultSink

    values = resolve(cfg)
    binding = binding_for(cfg)
    node_cls, _ = transport_classes(str(cfg.ros.transport))
    transport = node_cls(str(cfg.ros.node_name), binding, values, ros_args, bool(cfg.ros.use_sim_time))
    try:
        values = transport.values
        check_learning(cfg, values)
        check_budget(values)
        with open_dict(cfg):
            apply(cfg, values)
            cfg.ros.use_sim_time = transport.use_sim_time
        base, state, refiner_net = nominal_models(cfg)
        controller, set_goal, loaded = build_controller(cfg, binding, base, state, refiner_net)
        period = 1.0 / float(values["rate_hz"])
        settings = NodeSettings(
            period_s=period, odom_timeout_s=float(values["odom_timeout_s"]),
            plan_deadline_s=float(values["plan_deadline_s"]), state_limit=float(values["state_limit"]),
            learn=bool(values["learn"]), model_dt=float(cfg.robot.dt), reach_radius=float(values["reach_radius"]),
            waypoint_timeout_s=float(cfg.task.waypoint_timeout_s), status_period_s=float(cfg.ros.status_period_s),
            checkpoint_path=str(cfg.ros.checkpoint.path), checkpoint_every_s=float(values["checkpoint_every_s"]),
            overrun_limit=int(values["overrun_limit"]), overrun_window=int(values["overrun_window"]),
            budget_factor=float(values["budget_factor"]), budget_floor=float(values["budget_floor"]),
            budget_restore_after=int(values["budget_restore_after"]))
        r = cfg.ros.regime
        regime = RegimeMonitor(int(r.window), float(r.factor), int(r.warmup))
        clock = SimClock() if transport.use_sim_time else WallClock()
        low, high = np.asarray(cfg.robot.action_low, float), np.asarray(cfg.robot.action_high, float)
        core = NodeCore(controller, transport, settings, set_goal, low, high, clock, log, regime)
        core.loaded_checkpoint = loaded
        transport.attach(core, clock if isinstance(clock, SimClock) else None)
        _stop_on_signals(core.stop)
        log(f"robocl-ros: {binding.name} node '{cfg.ros.node_name}' on {cfg.ros.transport} at {1 / period:g} Hz "
            f"({'sim time' if clock.sim else 'wall clock'}), odometry {values['odom_topic']} -> command "
            f"{values['command_topic']}; run dir {run_dir}")
        try:
            core.run()
        finally:
            _write_results(cfg, run_dir, core, ResultSink)
    finally:
        transport.close()
    return 0


def _stop_on_signals(stop) -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop())


def _write_results(cfg: DictConfig, run_dir: Path, core, sink_cls) -> None:
    sink = sink_cls(run_dir, "ros", str(cfg.experiment_name), lambda: OmegaConf.to_container(cfg, resolve=True))
    m = core.mission
    s = core.controller.stats
    row = {
        "method": str(cfg.ros.method), "seed": int(cfg.ros.seed), "task": f"{cfg.ros.transport}-{cfg.robot.name}",
        **core.timing(),
        "control_hz": 1.0 / core.settings.period_s,
        "success_rate": m.success_rate if m else None,
        "waypoints_reached": int(sum(m.reached)) if m else 0,
        "waypoints_total": len(m.waypoints) if m else 0,
        "safety_events": int(sum(core.events.values())),
        "regime_detections": core.regime.detections,
        "learned_transitions": core.learned,
        "dyn_mse": s.pred_sq_err.mean_all(),  # over every transition learned, not only the kept window
        "nonfinite_substitutions": core.nonfinite_substitutions,
        **core.budget.summary(),  # plan_overruns, planner_budget_reductions/_restores, population_*
    }
    sink.extra.update({"safety_events_by_reason": dict(core.events), "events": core.event_log[-500:],
                       "checkpoint": {"path": core.settings.checkpoint_path, "loaded": core.loaded_checkpoint,
                                      "saved": bool(core.settings.learn)},
                       "model": str(cfg.model) if cfg.get("model") else "simulator-pretrained"})
    if core.clock.sim:
        sink.note("sim time: jitter (lateness against the wall-clock schedule) is not measured")
    sink.add_run(row)
    core.write_cycles_csv(Path(run_dir) / "cycles.csv")
    log("robocl-ros: " + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
                                   if v is not None))
