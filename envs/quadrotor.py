"""Crazyflie-class quadrotor in MuJoCo with a PX4-offboard-like command interface.

The agent (an MPC planner) sends a setpoint at `control_hz` (default 25 Hz): a world-frame
velocity and yaw rate (`command="velocity"`) or roll, pitch, yaw rate and collective thrust
(`command="attitude"`). A cascaded controller (`quad_control.py`) that believes the *nominal*
vehicle turns it into rotor thrusts at the 500 Hz physics rate. Every way the real vehicle can
differ (payload, a weak motor, wind and gusts, the AFM command-gain intervention) is a
`QuadParams` field that `QuadrotorEnv.set_params` applies in place, so a regime can change
mid-episode without reloading the model.

Aerodynamics (applied as an external force at the centre of mass every physics step):
    F_drag = -(K_LIN + K_QUAD * |v_rel|) * v_rel,   v_rel = v - wind - gust
K_LIN is the Crazyflie's rotor ("induced") drag, roughly linear in airspeed at hover rotor speed
(Foerster 2015 identifies ~9e-7 N s/m per rad/s of summed rotor speed; x ~8000 rad/s at hover ->
~7e-3 N s/m); K_QUAD is frame drag 0.5 rho Cd A with Cd ~1, A ~25 cm^2. `wind` is the air
velocity (m/s, world frame); a 3 m/s wind pushes with ~0.035 N (~13 % of the weight).
Gusts are an Ornstein-Uhlenbeck air velocity (std `gust_std` m/s per axis, correlation time
GUST_TAU), drawn from `self.np_random` once per control step, so episodes are reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from gymnasium import spaces

from .mujoco_base import MujocoRobotEnv, mujoco
from .quad_control import CascadedController, CascadeGains, QuadNominal
from .quad_tasks import Reference, make_task

Vec3 = tuple[float, float, float]
Quad = tuple[float, float, float, float]

MAX_VEL = 1.0  # m/s per axis, velocity-mode action bound
MAX_YAW_RATE = math.pi / 2  # rad/s, action bound (both modes)
MAX_TILT_CMD = math.pi / 4  # rad, attitude-mode roll/pitch bound (PX4 default max tilt 45 deg)
CRASH_TILT = math.radians(60.0)  # tilt (body z vs world z) beyond this is a crash
CRASH_Z = 0.03  # m; below this height while descending faster than CRASH_VZ ...
CRASH_VZ = 0.5  # m/s  ... (or touching the ground that fast) is a crash
ARENA_HALF = 10.0  # m; leaving the 20 m box |x|, |y| <= 10, z <= 20 is a crash (fly-away)
ARENA_TOP = 20.0  # m
K_LIN = 7e-3  # N s/m, rotor drag (see module docstring)
K_QUAD = 1.5e-3  # N s^2/m^2, frame drag 0.5 * 1.2 kg/m^3 * 1.0 * 25e-4 m^2
GUST_TAU = 1.0  # s, gust correlation time
POS_NOISE = 0.01  # m, half-width of the uniform initial position noise
YAW_NOISE = 0.01  # rad, half-width of the uniform initial yaw noise
PAYLOAD_SIZE = (0.02, 0.02, 0.004)  # m, box the payload mass is spread over (sets its inertia)


def _floats(value: Any, n: int, name: str) -> tuple[float, ...]:
    """Coerce an n-sequence (Hydra gives lists) to finite floats, with a clear error."""
    try:
        out = tuple(float(x) for x in value)
    except (TypeError, ValueError):
        out = ()
    if len(out) != n or not all(math.isfinite(x) for x in out):
        raise ValueError(f"QuadParams.{name}={value!r}: expected {n} finite numbers")
    return out


@dataclass(frozen=True)
class QuadParams:
    """One physical regime (what differs from the vehicle the controller believes in).

    payload_frac: extra mass as a fraction of the nominal 28 g (0.3, 0.6 are the issue's regimes;
    up to 1.0, where thrust-to-weight drops to 1.1). motor_efficiency: thrust produced per thrust
    commanded, per rotor (front-right, back-right, back-left, front-left). wind: air velocity (m/s,
    world ENU). gust_std: per-axis std of the OU gust air velocity (m/s). gains: AFM intervention,
    multipliers on the 4 commanded setpoint channels (applied after clipping to the action box).
    """

    payload_frac: float = 0.0
    motor_efficiency: Quad = (1.0, 1.0, 1.0, 1.0)
    wind: Vec3 = (0.0, 0.0, 0.0)
    gust_std: float = 0.0
    gains: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "motor_efficiency", _floats(self.motor_efficiency, 4, "motor_efficiency"))
        object.__setattr__(self, "wind", _floats(self.wind, 3, "wind"))
        object.__setattr__(self, "gains", _floats(self.gains, 4, "gains"))
        object.__setattr__(self, "payload_frac", float(self.payload_frac))
        object.__setattr__(self, "gust_std", float(self.gust_std))
        if not 0.0 <= self.payload_frac <= 1.0:
            raise ValueError(f"QuadParams.payload_frac={self.payload_frac}: expected 0..1")
        if not all(0.0 <= e <= 1.5 for e in self.motor_efficiency):
            raise ValueError(f"QuadParams.motor_efficiency={self.motor_efficiency}: expected 0..1.5 each")
        if not all(abs(w) <= 15.0 for w in self.wind):
            raise ValueError(f"QuadParams.wind={self.wind}: expected |component| <= 15 m/s")
        if not 0.0 <= self.gust_std <= 5.0:
            raise ValueError(f"QuadParams.gust_std={self.gust_std}: expected 0..5 m/s")



def _nominal_from_model(model: mujoco.MjModel, body: int, actuators: np.ndarray) -> QuadNominal:
    """The controller's belief: the as-compiled (no payload, all motors 100 %) vehicle."""
    sites = model.actuator_trnid[actuators, 0]
    xy = model.site_pos[sites, :2] - model.body_ipos[body, :2]
    ixx, iyy, izz = (float(v) for v in model.body_inertia[body])
    return QuadNominal(
        mass=float(model.body_mass[body]),
        inertia=(ixx, iyy, izz),
        max_thrust=float(model.actuator_ctrlrange[actuators, 1].min()),
        rotor_xy=tuple((float(x), float(y)) for x, y in xy),
        yaw_coeff=tuple(float(v) for v in model.actuator_gear[actuators, 5]),
    )


def euler_zyx(rot: np.ndarray) -> tuple[float, float, float]:
    """Body-to-world rotation -> (roll, pitch, yaw), ZYX convention."""
    roll = math.atan2(rot[2, 1], rot[2, 2])
    pitch = math.asin(max(-1.0, min(1.0, -rot[2, 0])))
    yaw = math.atan2(rot[1, 0], rot[0, 0])
    return roll, pitch, yaw


class QuadrotorEnv(MujocoRobotEnv):
    """Quadrotor; obs [x, y, z, vx, vy, vz, roll, pitch, yaw, p, q, r], action = setpoint.

    Position/velocity: world frame (ENU) at the centre of mass; roll, pitch, yaw: ZYX Euler angles;
    p, q, r: body angular rates. Reward: minus the distance to the task reference at the time
    reached. Terminated on a crash (info["crash"]); truncated when the task's duration is over.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 25}

    def __init__(
        self,
        params: QuadParams | None = None,
        control_hz: float = 25.0,
        command: str = "velocity",
        task: str | Reference = "hover",
        render_mode: str | None = None,
        camera: str = "chase",
    ) -> None:
        self._load_mujoco("quadrotor.xml", render_mode, camera)
        self.nstep = self._substeps(control_hz)
        self.physics_dt = float(self.model.opt.timestep)
        self.dt = self.nstep * self.physics_dt
        self.control_hz = 1.0 / self.dt
        self.metadata = {**self.metadata, "render_fps": round(self.control_hz)}
        self.task: Reference = make_task(task) if isinstance(task, str) else task
        self.task_name = task if isinstance(task, str) else type(task).__name__

        m = self.model
        self._body = m.body("quad").id
        self._payload = m.body("payload").id
        self._actuators = np.array([m.actuator(f"rotor{i}").id for i in range(1, 5)])
        self.nominal = _nominal_from_model(m, self._body, self._actuators)
        self._gain_nominal = m.actuator_gainprm[self._actuators, 0].copy()
        self.controller = CascadedController(self.nominal, self.physics_dt, command, CascadeGains())
        self.command = command

        self.action_space = self._make_action_space(command)
        high = np.array([np.inf] * 6 + [math.pi, math.pi / 2, math.pi] + [np.inf] * 3)
        self.observation_space = spaces.Box(low=-high, high=high, dtype=np.float64)
        self._params = QuadParams()
        self._gust = np.zeros(3)
        self._steps = 0
        self.set_params(params or QuadParams())

    def _substeps(self, control_hz: float) -> int:
        ts = self.model.opt.timestep
        n = round(1.0 / (float(control_hz) * ts)) if control_hz > 0 else 0
        if n < 1 or abs(n * ts * control_hz - 1.0) > 1e-6:
            raise ValueError(f"control_hz={control_hz}: the control period must be a whole number of "
                             f"{ts} s physics steps (e.g. 20, 25 or 50 Hz)")
        return n

    @staticmethod
    def _make_action_space(command: str) -> spaces.Box:
        if command == "velocity":
            high = np.array([MAX_VEL, MAX_VEL, MAX_VEL, MAX_YAW_RATE], dtype=np.float32)
            return spaces.Box(low=-high, high=high, dtype=np.float32)
        if command == "attitude":
            low = np.array([-MAX_TILT_CMD, -MAX_TILT_CMD, -MAX_YAW_RATE, 0.0], dtype=np.float32)
            high = np.array([MAX_TILT_CMD, MAX_TILT_CMD, MAX_YAW_RATE, 1.0], dtype=np.float32)
            return spaces.Box(low=low, high=high, dtype=np.float32)
        raise ValueError(f"command={command!r}: use 'velocity' or 'attitude'")

    # ---- regime -------------------------------------------------------------------------------
    @property
    def params(self) -> QuadParams:
        return self._params

    def set_gains(self, gains: tuple[float, ...]) -> None:
        """Change only the AFM intervention gains (no model edit; cheap mid-episode)."""
        self._params = replace(self._params, gains=gains)

    def set_params(self, params: QuadParams) -> None:
        """Apply a physical regime to the compiled model in place (no XML reload, state kept)."""
        if not isinstance(params, QuadParams):
            raise TypeError(f"set_params expects QuadParams, got {type(params).__name__}")
        kg = params.payload_frac * self.nominal.mass
        a, b, c = PAYLOAD_SIZE
        self.model.body_mass[self._payload] = kg
        self.model.body_inertia[self._payload] = kg / 12.0 * np.array(
            [b * b + c * c, a * a + c * c, a * a + b * b])
        efficiency = np.asarray(params.motor_efficiency)
        self.model.actuator_gainprm[self._actuators, 0] = self._gain_nominal * efficiency
        mujoco.mj_setConst(self.model, self._scratch)  # subtree masses, invweights, mean inertia
        self._params = params

    # ---- gymnasium API ------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """Hover at options['pose'] ((x, y, z) or (x, y, z, yaw); default: the task's start point,
        (0, 0, 1) for the built-in tasks) plus small noise; rotors spinning at nominal hover."""
        super().reset(seed=seed)
        x, y, z, yaw = self._pose_option(options)
        nx, ny, nz = self.np_random.uniform(-POS_NOISE, POS_NOISE, size=3)
        nyaw = self.np_random.uniform(-YAW_NOISE, YAW_NOISE)
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[0:3] = (x + nx, y + ny, z + nz)
        self.data.qpos[3:7] = (math.cos((yaw + nyaw) / 2), 0.0, 0.0, math.sin((yaw + nyaw) / 2))
        self.data.act[:] = self.nominal.hover_thrust
        self.data.ctrl[self._actuators] = self.nominal.hover_thrust
        mujoco.mj_forward(self.model, self.data)
        self.controller.reset(yaw + nyaw)
        # gusts start from their stationary distribution, not from calm air
        self._gust = self._params.gust_std * self.np_random.normal(size=3)
        self._steps = 0
        return self._obs(), {"crash": False, "t": 0.0}

    def _pose_option(self, options: dict[str, Any] | None) -> tuple[float, float, float, float]:
        pose = (options or {}).get("pose")
        if pose is None:
            start, _ = self.task(0.0)
            return float(start[0]), float(start[1]), float(start[2]), 0.0
        try:
            vals = [float(p) for p in pose]
        except (TypeError, ValueError):
            vals = []
        if len(vals) not in (3, 4) or not all(math.isfinite(v) for v in vals):
            raise ValueError(f"reset option pose={pose!r}: expected (x, y, z) or (x, y, z, yaw)")
        return vals[0], vals[1], vals[2], vals[3] if len(vals) == 4 else 0.0

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        setpoint = self.setpoint(action)
        self.controller.set_setpoint(setpoint)
        self._advance_gust()
        crash = self._simulate()
        self._steps += 1
        t = self._steps * self.dt
        obs = self._obs()
        ref_pos, ref_vel = self.task(t)
        err = float(np.linalg.norm(obs[:3] - ref_pos))
        crash = crash or self._crashed_now(obs)
        truncated = (not crash) and t >= self.task.duration - 1e-9
        info = {"crash": crash, "t": t, "ref_pos": ref_pos, "ref_vel": ref_vel, "tracking_error": err,
                "setpoint": setpoint}
        return obs, -err, crash, truncated, info

    def setpoint(self, action: np.ndarray) -> np.ndarray:
        """What the autopilot receives: the action clipped to the box, times the AFM gains."""
        a = np.asarray(action, dtype=np.float64).reshape(4)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action={a!r}: must be finite")
        return np.clip(a, self.action_space.low, self.action_space.high) * np.asarray(self._params.gains)

    def _advance_gust(self) -> None:
        """Exact OU update over one control period (stationary std = gust_std)."""
        std = self._params.gust_std
        if std <= 0.0:
            self._gust[:] = 0.0
            return
        decay = math.exp(-self.dt / GUST_TAU)
        self._gust = decay * self._gust + std * math.sqrt(1.0 - decay * decay) * self.np_random.normal(size=3)

    def _simulate(self) -> bool:
        """Run the low-level loop for one control period; True if the vehicle hit the ground hard."""
        m, d, body, ctrl = self.model, self.data, self._body, self.controller
        air = np.asarray(self._params.wind) + self._gust
        xfrc = d.xfrc_applied[body]
        rot = np.empty((3, 3))
        impact = False
        for _ in range(self.nstep):
            vel = d.qvel[0:3]
            mujoco.mju_quat2Mat(rot.reshape(9), d.qpos[3:7])  # d.xmat lags qpos by one mj_step
            d.ctrl[self._actuators] = ctrl.update(vel, rot, d.qvel[3:6])
            v_rel = vel - air
            xfrc[0:3] = -(K_LIN + K_QUAD * math.sqrt(v_rel @ v_rel)) * v_rel
            mujoco.mj_step(m, d)
            if d.qvel[2] < -CRASH_VZ and (d.qpos[2] < CRASH_Z or d.ncon > 0):
                impact = True
        return impact


    def _crashed_now(self, obs: np.ndarray) -> bool:
        tilt = math.acos(max(-1.0, min(1.0, self._rotation()[2, 2])))
        out = abs(obs[0]) > ARENA_HALF or abs(obs[1]) > ARENA_HALF or obs[2] > ARENA_TOP
        return bool(tilt > CRASH_TILT or out)

    def _obs(self) -> np.ndarray:
        d = self.data
        roll, pitch, yaw = euler_zyx(self._rotation())
        return np.concatenate([d.qpos[0:3], d.qvel[0:3], (roll, pitch, yaw), d.qvel[3:6]])


