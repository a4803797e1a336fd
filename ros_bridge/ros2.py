"""ROS 2 (rclpy) adapter: declared typed parameters, control-suited QoS, use_sim_time, I/O thread.

QoS: odometry best-effort keep-last (sensor data: a late sample is worthless, never block on it);
commands and status reliable; waypoints reliable + transient-local (a late-joining node still gets the
course); /clock best-effort depth 1 from the sim (as ROS 2's ClockQoS). A publish the middleware refuses is
counted and logged, never raised into the control loop.
Discovery is whatever the environment says (`ROS_DOMAIN_ID`, `ROS_AUTOMATIC_DISCOVERY_RANGE`);
tests fix both (a private domain id, LOCALHOST).
"""

from __future__ import annotations

import os
import sys
import threading
from typing import TYPE_CHECKING, Any

import numpy as np
from robocl_ros import INSTALL_ROS2, RosUnavailable, messages
from robocl_ros.params import NODE_PARAMS, Param

from robocl.errors import UsageError

if TYPE_CHECKING:
    from robocl_ros.robots import RobotBinding


def import_rclpy():
    # Fast DDS's default synchronous publication sends from the calling thread; after a matched reader is
    # SIGKILLed that call was seen to block for ~1 s now and then, delaying the safe command. Asynchronous
    # publication hands samples to the middleware's own thread (set the variable to override).
    os.environ.setdefault("RMW_FASTRTPS_PUBLICATION_MODE", "ASYNCHRONOUS")
    try:
        import rclpy
        from geometry_msgs.msg import Twist  # noqa: F401
        from nav_msgs.msg import Odometry  # noqa: F401
        from std_msgs.msg import String  # noqa: F401
    except Exception as exc:  # ImportError, or a missing librmw_*.so inside rclpy
        why = f"{type(exc).__name__}: {exc}"
        raise RosUnavailable(f"ROS 2 is not available ({why}); install it: {INSTALL_ROS2}") from None
    return rclpy


def _stamp(t: float):
    from builtin_interfaces.msg import Time

    sec = int(t // 1)
    return Time(sec=sec, nanosec=int(round((t - sec) * 1e9)) % 1_000_000_000)


class _Base:
    """One rclpy context + node + single-threaded executor spinning on its own thread."""

    def __init__(self, node_name: str, ros_args: list[str], use_sim_time: bool,
                 declare: tuple[Param, ...] = (), values: dict[str, Any] | None = None) -> None:
        rclpy = import_rclpy()
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter import Parameter
        from rclpy.signals import SignalHandlerOptions

        self.rclpy = rclpy
        self.context = rclpy.context.Context()
        args = ["robocl", "--ros-args", *ros_args] if ros_args else None
        try:
            rclpy.init(args=args, context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        except Exception as exc:
            raise UsageError(f"ROS 2 arguments {' '.join(ros_args)!r} were rejected: {exc}") from None
        self.node = rclpy.create_node(node_name, context=self.context)
        given = {p for p in self.node._parameter_overrides} if hasattr(self.node, "_parameter_overrides") else set()
        if use_sim_time and "use_sim_time" not in given:
            self.node.set_parameters([Parameter("use_sim_time", Parameter.Type.BOOL, True)])
        self.use_sim_time = bool(self.node.get_parameter("use_sim_time").value)
        self.values = dict(values or {})
        for p in declare:
            self.values[p.name] = self._declare(p, self.values[p.name])
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread: threading.Thread | None = None
        self.publish_errors = 0

    def _declare(self, p: Param, default: Any) -> Any:
        from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
        from rcl_interfaces.msg import ParameterType as T

        kind = {float: T.PARAMETER_DOUBLE, int: T.PARAMETER_INTEGER, bool: T.PARAMETER_BOOL,
                str: T.PARAMETER_STRING}[p.kind]
        desc = ParameterDescriptor(name=p.name, type=kind, read_only=True,
                                   description=p.description + (f" ({'|'.join(p.choices)})" if p.choices else ""))
        if p.kind is float and p.lo is not None:
            desc.floating_point_range = [FloatingPointRange(from_value=float(p.lo), to_value=float(p.hi), step=0.0)]
        if p.kind is int and p.lo is not None:
            desc.integer_range = [IntegerRange(from_value=int(p.lo), to_value=int(p.hi), step=1)]
        try:
            value = self.node.declare_parameter(p.name, p.kind(default), desc).value
        except Exception as exc:  # out of range / wrong type from --ros-args or a launch file
            raise UsageError(f"ROS parameter {p.name}: {exc}".splitlines()[0]) from None
        if p.choices and value not in p.choices:
            raise UsageError(f"ROS parameter {p.name}={value!r}: must be one of {', '.join(p.choices)}")
        return value

    def _publish(self, publisher, msg) -> None:
        """Publish; a middleware refusal is counted and logged, never raised into the control loop (the
        next cycle, or the watchdog, publishes again)."""
        try:
            publisher.publish(msg)
        except Exception as exc:  # rclpy RCLError: e.g. the writer's history is full of unacknowledged samples
            self.publish_errors += 1
            if self.publish_errors in (1, 10) or self.publish_errors % 1000 == 0:
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                print(f"robocl-ros: publish on {publisher.topic_name} failed ({self.publish_errors} so far): {first}",
                      file=sys.stderr, flush=True)

    def now(self) -> Any:
        return self.node.get_clock().now().to_msg()

    def qos(self, kind: str):
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

        if kind == "sensor":
            return qos_profile_sensor_data
        if kind == "latched":
            return QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                              durability=DurabilityPolicy.TRANSIENT_LOCAL)
        if kind == "clock":  # best effort, like ROS 2's ClockQoS: a late clock sample is worthless
            return QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.BEST_EFFORT)
        return QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)

    def spin_in_background(self) -> None:
        self._thread = threading.Thread(target=self._spin, name="ros2-io", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # context shut down while spinning
            pass

    def close(self) -> None:
        try:
            self.executor.shutdown(timeout_sec=1.0)
            if self._thread is not None:
                self._thread.join(timeout=2.0)
            self.node.destroy_node()
        finally:
            if self.context.ok():
                self.rclpy.shutdown(context=self.context)


class Ros2NodeTransport(_Base):
    """The onboard node's side: odometry/waypoints/clock in, command/status out."""

    def __init__(self, node_name: str, binding: RobotBinding, values: dict[str, Any], ros_args: list[str],
                 use_sim_time: bool) -> None:
        super().__init__(node_name, ros_args, use_sim_time, NODE_PARAMS, values)
        from geometry_msgs.msg import Twist, TwistStamped
        from std_msgs.msg import String

        self.binding = binding
        v = self.values
        self._cmd_type = TwistStamped if binding.stamped_command else Twist
        self._string = String
        self._cmd_pub = self.node.create_publisher(self._cmd_type, v["command_topic"], self.qos("reliable"))
        self._status_pub = self.node.create_publisher(String, v["status_topic"], self.qos("reliable"))

    def attach(self, core, sim_clock=None) -> None:
        """Subscribe the core's inputs (after the controller exists) and start the I/O thread."""
        from geometry_msgs.msg import PoseArray
        from nav_msgs.msg import Odometry, Path

        v, binding = self.values, self.binding

        def on_odom(msg) -> None:
            state = binding.state_from_odom(messages.odom_fields(msg))
            core.on_odometry(state, messages.stamp_seconds(msg.header.stamp))

        def on_waypoints(msg) -> None:
            core.on_waypoints(messages.waypoints_array(msg, binding.pos_dims))

        self.node.create_subscription(Odometry, v["odom_topic"], on_odom, self.qos("sensor"))
        wp_type = Path if v["waypoints_type"] == "path" else PoseArray
        self.node.create_subscription(wp_type, v["waypoints_topic"], on_waypoints, self.qos("latched"))
        if sim_clock is not None:
            from rclpy.qos import QoSProfile, ReliabilityPolicy
            from rosgraph_msgs.msg import Clock

            self.node.create_subscription(Clock, "/clock", lambda m: sim_clock.set(messages.stamp_seconds(m.clock)),
                                          QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT))
        self.spin_in_background()

    def publish_command(self, action: np.ndarray) -> None:
        linear, angular = self.binding.command_to_twist(action)
        if self.binding.stamped_command:
            msg = self._cmd_type()
            msg.header.stamp = self.now()
            msg.header.frame_id = self.values["world_frame"]
            messages.fill_twist(msg.twist, linear, angular)
        else:
            msg = messages.fill_twist(self._cmd_type(), linear, angular)
        self._publish(self._cmd_pub, msg)

    def publish_status(self, text: str) -> None:
        self._publish(self._status_pub, self._string(data=text))


class Ros2SimTransport(_Base):
    """The simulated robot's side: odometry, /clock and the course out; commands in."""

    def __init__(self, node_name: str, binding: RobotBinding, topics: dict[str, str], frames: dict[str, str],
                 ros_args: list[str], use_sim_time: bool) -> None:
        super().__init__(node_name, ros_args, False)
        from geometry_msgs.msg import PoseStamped
        from nav_msgs.msg import Odometry, Path
        from rosgraph_msgs.msg import Clock

        self.binding, self.topics, self.frames = binding, topics, frames
        self.use_sim_time = use_sim_time
        self._odom_type, self._path_type, self._pose_stamped, self._clock_type = Odometry, Path, PoseStamped, Clock
        self._odom_pub = self.node.create_publisher(Odometry, topics["odom"], self.qos("sensor"))
        self._path_pub = self.node.create_publisher(Path, topics["waypoints"], self.qos("latched"))
        self._clock_pub = self.node.create_publisher(Clock, "/clock", self.qos("clock")) if use_sim_time else None
        self._wall0 = None

    def attach(self, sim) -> None:
        from geometry_msgs.msg import Twist, TwistStamped

        cmd_type = TwistStamped if self.binding.stamped_command else Twist

        def on_cmd(msg) -> None:
            sim.on_command(self.binding.twist_to_action(*messages.twist_values(msg)))

        self.node.create_subscription(cmd_type, self.topics["command"], on_cmd, self.qos("reliable"))
        self.spin_in_background()

    def publish_clock(self, t: float) -> None:
        if self._clock_pub is not None:
            self._publish(self._clock_pub, self._clock_type(clock=_stamp(t)))

    def publish_odometry(self, state: np.ndarray, stamp: float) -> None:
        msg = messages.fill_odometry(self._odom_type(), self.binding.odom_from_state(state), _stamp(stamp),
                                     self.frames["world"], self.frames["body"])
        self._publish(self._odom_pub, msg)

    def publish_course(self, points: np.ndarray) -> None:
        self._publish(self._path_pub, messages.fill_path(self._path_type(), points, _stamp(0.0), self.frames["world"],
                                                  self._pose_stamped))
