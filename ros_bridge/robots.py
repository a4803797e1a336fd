"""Per-robot pieces of the bridge: state <-> odometry, the command message, the planner cost and goal.

UGV: geometry_msgs/Twist on `cmd_vel` (linear.x = forward m/s, angular.z = yaw rate rad/s, body
frame), the message every differential-drive base driver takes. Quadrotor: a world-frame velocity
setpoint, geometry_msgs/TwistStamped (linear = ENU velocity m/s, angular.z = yaw rate rad/s,
header.frame_id = the odometry world frame) on `setpoint_velocity/cmd_vel`, the message and topic
mavros' setpoint_velocity plugin takes for PX4/ArduPilot offboard velocity control (zero = hover).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from robocl_ros import convert


@dataclass(frozen=True)
class RobotBinding:
    name: str
    state_dim: int
    pos_dims: int  # waypoint/goal dimensions taken from the state's first entries
    stamped_command: bool  # TwistStamped (quadrotor) or Twist (UGV)
    default_command_topic: str
    state_from_odom: Callable[[convert.OdomFields], np.ndarray]
    odom_from_state: Callable[[np.ndarray], convert.OdomFields]

    def command_to_twist(self, action: np.ndarray) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        """(linear, angular) of the command message for an action."""
        a = [float(v) for v in action]
        if self.name == "ugv":
            return (a[0], 0.0, 0.0), (0.0, 0.0, a[1])
        return (a[0], a[1], a[2]), (0.0, 0.0, a[3])

    def twist_to_action(self, linear: tuple[float, float, float], angular: tuple[float, float, float]) -> np.ndarray:
        if self.name == "ugv":
            return np.array([linear[0], angular[2]], dtype=float)
        return np.array([linear[0], linear[1], linear[2], angular[2]], dtype=float)


UGV = RobotBinding("ugv", 6, 2, False, "cmd_vel", convert.ugv_state, convert.ugv_odometry)
QUADROTOR = RobotBinding("quadrotor", 12, 3, True, "setpoint_velocity/cmd_vel", convert.quad_state,
                         convert.quad_odometry)
BINDINGS = {"ugv": UGV, "quadrotor": QUADROTOR}


def make_cost(robot: str, horizon: int):
    """The planner cost for driving to the current goal and a setter `set_goal(cost, goal)`."""
    if robot == "ugv":
        from robocl.planning.costs import WaypointCost

        def set_goal(cost, goal: np.ndarray) -> None:
            cost.set_goal(torch.as_tensor(goal[:2], dtype=torch.float32))

        return WaypointCost(), set_goal
    from robocl.planning.tracking import ReferenceTrackingCost

    def set_quad_goal(cost, goal: np.ndarray) -> None:
        # a waypoint is a hold point: the reference sits on it over the whole horizon, at rest
        pos = np.broadcast_to(np.asarray(goal[:3], float), (horizon, 3))
        cost.set_reference(pos, np.zeros((horizon, 3)))

    return ReferenceTrackingCost(horizon), set_quad_goal
