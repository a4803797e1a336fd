"""robocl_ros: the onboard ROS node (ROS 2 rclpy, ROS 1 rospy) and a MuJoCo robot behind ROS topics.

Nothing here imports ROS at module level: `robocl_ros.core` (the transport-agnostic control loop,
watchdog and checkpoints) and `robocl_ros.convert` (REP-103/105 message <-> state mapping) run
without ROS; the adapters in `robocl_ros.ros2` / `robocl_ros.ros1` import their client library
when a node is built.
"""

INSTALL_ROS2 = ("pip install 'robocl[ros2]'  (= ros-rclpy ros-geometry-msgs ros-nav-msgs ros-std-msgs "
                "ros-rmw-fastrtps-cpp)")
INSTALL_ROS1 = ("apt-get install -y --no-install-recommends ros-core python3-rospy python3-geometry-msgs "
                "python3-nav-msgs python3-std-msgs python3-rostopic  (Debian bookworm)")


class RosUnavailable(ImportError):
    """The chosen ROS client library cannot be imported; the message says how to install it."""
