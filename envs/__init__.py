"""robocl MuJoCo environments; importing this package registers them with Gymnasium."""

from gymnasium.envs.registration import register

register(id="robocl/UGV-v0", entry_point="robocl_envs.ugv:UGVEnv")
register(id="robocl/Quadrotor-v0", entry_point="robocl_envs.quadrotor:QuadrotorEnv")
register(id="robocl/Cabinet-v0", entry_point="robocl_envs.articulated:CabinetEnv")
register(id="robocl/Pusher-v0", entry_point="robocl_envs.pusher:PusherEnv")
register(id="robocl/Door-v0", entry_point="robocl_envs.door:DoorEnv")
