"""A ROS listener for tests and measurements: records odometry, commands and status with receipt times.

    python -m robocl_ros.probe --transport ros2|ros1 --robot ugv|quadrotor --out FILE [--duration S]

Writes one CSV line per message as it arrives (flushed, so a killed graph loses nothing):
`odom,RX,STAMP`, `cmd,RX,V1,...` (the robot's action: UGV v, w; quadrotor vx, vy, vz, yaw_rate) and
`status,RX,MODE,REASON`, RX being the steady clock (`time.monotonic()`, shared by every process on the
machine), so reaction times and latencies can be taken across processes. A first line `ready,RX` is
written once the subscriptions exist. Ends on SIGINT/SIGTERM or after --duration seconds.
No torch, no Hydra: it starts in about a second.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time

TOPICS = {"odom": "odom", "status": "robocl/status"}
COMMAND = {"ugv": "cmd_vel", "quadrotor": "setpoint_velocity/cmd_vel"}


def _action(robot: str, msg) -> list[float]:
    t = msg.twist if hasattr(msg, "twist") else msg
    if robot == "ugv":
        return [t.linear.x, t.angular.z]
    return [t.linear.x, t.linear.y, t.linear.z, t.angular.z]


def _stamp(stamp) -> float:
    sec = getattr(stamp, "sec", None)
    return float(stamp.secs) + stamp.nsecs * 1e-9 if sec is None else float(sec) + stamp.nanosec * 1e-9


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m robocl_ros.probe", description=__doc__.splitlines()[0])
    ap.add_argument("--transport", choices=("ros2", "ros1"), default="ros2")
    ap.add_argument("--robot", choices=tuple(COMMAND), default="ugv")
    ap.add_argument("--out", required=True)
    ap.add_argument("--duration", type=float, default=600.0)
    ap.add_argument("--odom-topic", default=TOPICS["odom"])
    ap.add_argument("--command-topic", default=None)
    ap.add_argument("--status-topic", default=TOPICS["status"])
    args = ap.parse_args(argv)
    command_topic = args.command_topic or COMMAND[args.robot]
    out = open(args.out, "w", buffering=1)  # noqa: SIM115 (line-buffered, closed at exit)
    lock = threading.Lock()

    def write(*fields) -> None:
        line = ",".join(f"{f:.6f}" if isinstance(f, float) else str(f) for f in fields)
        with lock:
            out.write(line + "\n")

    def on_odom(msg) -> None:
        write("odom", time.monotonic(), _stamp(msg.header.stamp))

    def on_cmd(msg) -> None:
        write("cmd", time.monotonic(), *(float(v) for v in _action(args.robot, msg)))

    def on_status(msg) -> None:
        rx = time.monotonic()
        try:
            doc = json.loads(msg.data)
        except ValueError:
            doc = {}
        write("status", rx, doc.get("mode", ""), str(doc.get("reason", "")).replace(",", ";"))

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if args.transport == "ros2":
        from robocl_ros.ros2 import import_rclpy

        rclpy = import_rclpy()
        from geometry_msgs.msg import Twist, TwistStamped
        from nav_msgs.msg import Odometry
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
        from rclpy.signals import SignalHandlerOptions
        from std_msgs.msg import String

        ctx = rclpy.context.Context()
        rclpy.init(context=ctx, signal_handler_options=SignalHandlerOptions.NO)
        node = rclpy.create_node(f"robocl_probe_{os.getpid()}", context=ctx)
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        node.create_subscription(Odometry, args.odom_topic, on_odom, qos_profile_sensor_data)
        node.create_subscription(Twist if args.robot == "ugv" else TwistStamped, command_topic, on_cmd, reliable)
        node.create_subscription(String, args.status_topic, on_status, reliable)
        executor = SingleThreadedExecutor(context=ctx)
        executor.add_node(node)
        spinner = threading.Thread(target=executor.spin, daemon=True)
        spinner.start()

        def close() -> None:
            executor.shutdown(timeout_sec=1.0)
            spinner.join(timeout=2.0)
            node.destroy_node()
            rclpy.shutdown(context=ctx)
    else:
        from robocl_ros.ros1 import import_rospy

        rospy = import_rospy()
        from geometry_msgs.msg import Twist, TwistStamped
        from nav_msgs.msg import Odometry
        from std_msgs.msg import String

        rospy.init_node(f"robocl_probe_{os.getpid()}", anonymous=False, disable_signals=True)
        rospy.Subscriber(args.odom_topic, Odometry, on_odom, queue_size=50, tcp_nodelay=True)
        rospy.Subscriber(command_topic, Twist if args.robot == "ugv" else TwistStamped, on_cmd, queue_size=50,
                         tcp_nodelay=True)
        rospy.Subscriber(args.status_topic, String, on_status, queue_size=50)

        def close() -> None:
            rospy.signal_shutdown("probe done")
    write("ready", time.monotonic())
    stop.wait(args.duration)
    try:
        close()
    finally:
        out.close()
    return 0


def read(path) -> dict[str, list[tuple]]:
    """The probe's file as {'odom': [(rx, stamp)], 'cmd': [(rx, *action)], 'status': [(rx, mode, reason)]}."""
    rows: dict[str, list[tuple]] = {"ready": [], "odom": [], "cmd": [], "status": []}
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split(",")
            if len(parts) < 2 or parts[0] not in rows:
                continue  # a line cut by a kill
            try:
                if parts[0] == "status":
                    rows["status"].append((float(parts[1]), *parts[2:4]))
                else:
                    rows[parts[0]].append(tuple(float(v) for v in parts[1:]))
            except ValueError:
                continue
    return rows


if __name__ == "__main__":
    sys.exit(main())
