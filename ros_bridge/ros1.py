"""ROS 1 (rospy) adapter, for robots still on Noetic-era stacks (Debian bookworm ships ROS 1).

The project's Python imports Debian's rospy once `/usr/lib/python3/dist-packages` is *appended* to
sys.path, in this process only. The ROS 1 message packages (std_msgs, geometry_msgs, nav_msgs,
rosgraph_msgs) have the same import names as the ROS 2 wheels, which come first on sys.path, so
those few are loaded from the Debian folder explicitly before rospy is imported.
Parameters are private (`~rate_hz`, ...), checked against the same ranges as the ROS 2 ones.
`ros.use_sim_time=true` (the launch file's `use_sim_time` arg) sets `/use_sim_time` and makes the node
follow /clock; the sim sets `/use_sim_time` to its own setting, as a simulator's launch does.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from typing import TYPE_CHECKING, Any

import numpy as np
from robocl_ros import INSTALL_ROS1, RosUnavailable, messages
from robocl_ros.params import NODE_PARAMS, check_value

from robocl.errors import UsageError

if TYPE_CHECKING:
    from robocl_ros.robots import RobotBinding

DIST = os.environ.get("ROBOCL_ROS1_PYTHONPATH", "/usr/lib/python3/dist-packages")
MSG_PACKAGES = ("std_msgs", "geometry_msgs", "nav_msgs", "rosgraph_msgs")


def import_rospy():
    if "rospy" in sys.modules:
        return sys.modules["rospy"]
    try:
        for name in MSG_PACKAGES:
            mod = sys.modules.get(name)
            if mod is not None and any(str(p).startswith(DIST) for p in getattr(mod, "__path__", [])):
                continue
            for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
                del sys.modules[key]  # a ROS 2 package of the same name was imported first
            spec = importlib.machinery.PathFinder.find_spec(name, [DIST])
            if spec is None:
                raise ImportError(f"no ROS 1 package {name} in {DIST}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        if DIST not in sys.path:
            sys.path.append(DIST)
        import rospy
    except Exception as exc:
        why = f"{type(exc).__name__}: {exc}"
        raise RosUnavailable(f"ROS 1 is not available ({why}); install it: {INSTALL_ROS1}") from None
    return rospy


class _Base:
    """rospy.init_node; `/use_sim_time` is set by the clock's owner (the sim, always) or by a node told to use it."""

    def __init__(self, node_name: str, use_sim_time: bool, owns_clock: bool = False) -> None:
        rospy = import_rospy()
        self.rospy = rospy
        import rosgraph

        if not rosgraph.is_master_online():
            raise UsageError(f"ros.transport=ros1: no ROS master at {rosgraph.get_master_uri()} (start roscore, "
                             "or set ROS_MASTER_URI)")
        if use_sim_time or owns_clock:
            rospy.set_param("/use_sim_time", bool(use_sim_time))
        rospy.init_node(node_name, anonymous=False, disable_signals=True)
        # the node follows its own setting (ros.use_sim_time, or the launch file's use_sim_time arg), not a
        # /use_sim_time left on the master by an earlier run
        self.use_sim_time = bool(use_sim_time)

    def close(self) -> None:
        self.rospy.signal_shutdown("robocl: done")


class Ros1NodeTransport(_Base):
    def __init__(self, node_name: str, binding: RobotBinding, values: dict[str, Any], ros_args: list[str],
                 use_sim_time: bool) -> None:
        super().__init__(node_name, use_sim_time)
        from geometry_msgs.msg import Twist, TwistStamped
        from std_msgs.msg import String

        rospy = self.rospy
        self.binding = binding
        self.values = {p.name: check_value(p, rospy.get_param("~" + p.name, values[p.name]), "~" + p.name)
                       for p in NODE_PARAMS}
        v = self.values
        self._cmd_type = TwistStamped if binding.stamped_command else Twist
        self._string = String
        self._cmd_pub = rospy.Publisher(v["command_topic"], self._cmd_type, queue_size=10, tcp_nodelay=True)
        self._status_pub = rospy.Publisher(v["status_topic"], String, queue_size=10)

    def attach(self, core, sim_clock=None) -> None:
        from geometry_msgs.msg import PoseArray
        from nav_msgs.msg import Odometry, Path

        rospy, v, binding = self.rospy, self.values, self.binding

        def on_odom(msg) -> None:
            state = binding.state_from_odom(messages.odom_fields(msg))
            core.on_odometry(state, messages.stamp_seconds(msg.header.stamp))

        def on_waypoints(msg) -> None:
            core.on_waypoints(messages.waypoints_array(msg, binding.pos_dims))

        self._subs = [
            rospy.Subscriber(v["odom_topic"], Odometry, on_odom, queue_size=1, tcp_nodelay=True),
            rospy.Subscriber(v["waypoints_topic"], Path if v["waypoints_type"] == "path" else PoseArray,
                             on_waypoints, queue_size=1),
        ]
        if sim_clock is not None:
            from rosgraph_msgs.msg import Clock

            self._subs.append(rospy.Subscriber("/clock", Clock, lambda m: sim_clock.set(m.clock.to_sec()),
                                               queue_size=1, tcp_nodelay=True))

    def publish_command(self, action: np.ndarray) -> None:
        linear, angular = self.binding.command_to_twist(action)
        if self.binding.stamped_command:
            msg = self._cmd_type()
            msg.header.stamp = self.rospy.Time.now()
            msg.header.frame_id = self.values["world_frame"]
            messages.fill_twist(msg.twist, linear, angular)
        else:
            msg = messages.fill_twist(self._cmd_type(), linear, angular)
        self._cmd_pub.publish(msg)

    def publish_status(self, text: str) -> None:
        self._status_pub.publish(self._string(data=text))


class Ros1SimTransport(_Base):
    def __init__(self, node_name: str, binding: RobotBinding, topics: dict[str, str], frames: dict[str, str],
                 ros_args: list[str], use_sim_time: bool) -> None:
        super().__init__(node_name, use_sim_time, owns_clock=True)
        from nav_msgs.msg import Odometry, Path
        from rosgraph_msgs.msg import Clock

        rospy = self.rospy
        self.binding, self.topics, self.frames = binding, topics, frames
        self.sim_time = use_sim_time
        self._odom_type, self._path_type, self._clock_type = Odometry, Path, Clock
        self._odom_pub = rospy.Publisher(topics["odom"], Odometry, queue_size=5, tcp_nodelay=True)
        self._path_pub = rospy.Publisher(topics["waypoints"], Path, queue_size=1, latch=True)
        self._clock_pub = rospy.Publisher("/clock", Clock, queue_size=1, tcp_nodelay=True) if use_sim_time else None

    def attach(self, sim) -> None:
        from geometry_msgs.msg import Twist, TwistStamped

        cmd_type = TwistStamped if self.binding.stamped_command else Twist

        def on_cmd(msg) -> None:
            sim.on_command(self.binding.twist_to_action(*messages.twist_values(msg)))

        self._sub = self.rospy.Subscriber(self.topics["command"], cmd_type, on_cmd, queue_size=10, tcp_nodelay=True)

    def publish_clock(self, t: float) -> None:
        if self._clock_pub is not None:
            self._clock_pub.publish(self._clock_type(clock=self.rospy.Time.from_sec(t)))

    def publish_odometry(self, state: np.ndarray, stamp: float) -> None:
        self._odom_pub.publish(messages.fill_odometry(self._odom_type(), self.binding.odom_from_state(state),
                                                      self.rospy.Time.from_sec(stamp), self.frames["world"],
                                                      self.frames["body"]))

    def publish_course(self, points: np.ndarray) -> None:
        from geometry_msgs.msg import PoseStamped

        self._path_pub.publish(messages.fill_path(self._path_type(), points, self.rospy.Time(0), self.frames["world"],
                                                  PoseStamped))
