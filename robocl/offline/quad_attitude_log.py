"""A MuJoCo quadrotor flown in attitude mode along figure eights, logged as a CSV (a robot of its own kind).

    python -m robocl.offline.quad_attitude_log --out F.csv --minutes 20 --wind-at-min 12 --wind 3,0,0 \\
        [--out-calm CALM.csv --out-wind WIND.csv] [--seed 0] [--rate 25] [--noise 1.0] [--no-progress]

The quadrotor (`envs/quadrotor.py`, `command="attitude"`: roll, pitch, yaw-rate and collective-thrust
setpoints to the autopilot) is flown by a position controller (PID on position and velocity, with the
reference's acceleration fed forward -> desired acceleration -> thrust vector -> roll, pitch, thrust; a
PD on the heading -> yaw rate) along figure eights of varied size, speed, centre, height and heave, joined
by minimum-jerk transfers, with smooth (Ornstein-Uhlenbeck) exploration noise on every command so that
the log informs a learned model. At `--wind-at-min` a steady wind (air velocity, m/s, world frame) is
switched on mid-flight (`QuadParams.wind` through `set_params`, the state kept).

One row per control step: `t` (s), the state `x,y,z` (world position), `vx,vy,vz` (world velocity),
`qw,qx,qy,qz` (orientation, w first), `wx,wy,wz` (body rates) straight from MuJoCo's qpos/qvel, the
command sent in that step `roll_cmd,pitch_cmd,yaw_rate_cmd,thrust_cmd`, and `regime` (`calm`, then
`wind(wx,wy,wz)`). The last row holds the state only (empty command cells). A crash does not end the
log: it is counted, the vehicle is reset and the clock skips `CRASH_GAP_S` (more than robocl-eval's
`data.max_state_gap`), so readers break the stream there and no transition spans it (nor the crash).
`--minutes` is log time, crash gaps included.
`--out-calm` / `--out-wind` also write the part before / from the wind switch (train on the first,
evaluate on the second); the matching robot spec is `configs/robot/quad_attitude.yaml`.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike
from robocl_envs.quad_tasks import FigureEight, Reference, hover

from robocl.utils.args import OneLineParser, positive_float
from robocl.utils.io import atomic_write

STATE_COLUMNS = ("x", "y", "z", "vx", "vy", "vz", "qw", "qx", "qy", "qz", "wx", "wy", "wz")
COMMAND_COLUMNS = ("roll_cmd", "pitch_cmd", "yaw_rate_cmd", "thrust_cmd")
HEADER = ("t", *STATE_COLUMNS, *COMMAND_COLUMNS, "regime")
CRASH_GAP_S = 5.0  # s of log time skipped at a crash (robocl-eval breaks a stream at gaps > data.max_state_gap)
GRAVITY = 9.81
ARENA = 4.0  # m, figure-eight centres within |x|, |y| <= ARENA (the env's crash box is +-10 m)


@dataclass(frozen=True)
class Gains:
    """Position controller: PID on position (1/s^2, 1/s^3), D on velocity (1/s); heading PD (1/s)."""

    kp: float = 4.0
    kd: float = 3.2
    ki: float = 1.5
    i_limit: float = 1.0  # m*s, integrator authority (ki * i_limit = 1.5 m/s^2; a 3 m/s wind needs ~1.2)
    max_tilt: float = math.radians(35.0)  # rad, before noise (the command box allows 45 deg)
    k_yaw: float = 2.0
    k_yaw_rate: float = 0.2


@dataclass(frozen=True)
class Noise:
    """Exploration noise: stationary std per command channel (rad, rad, rad/s, thrust fraction) and its
    correlation time (s); smooth, so the commands it adds stay within what a controller would send."""

    std: tuple[float, float, float, float] = (0.05, 0.05, 0.3, 0.025)
    tau: float = 0.4


# ---- references ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Lap(FigureEight):
    """A figure eight (`envs/quad_tasks.py`) that also ramps down to rest at its end (so consecutive legs
    join without a velocity step) and heaves: z += heave * sin(w tau)."""

    heave: float = 0.0

    @property
    def duration(self) -> float:
        return self.period * self.laps + self.ramp

    def phase(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        up, rate_up = FigureEight.phase(self, np.minimum(t, self.duration / 2))
        down, rate_down = FigureEight.phase(self, np.maximum(self.duration - t, 0.0))
        late = t > self.duration / 2
        return np.where(late, self.period * self.laps - down, up), np.where(late, rate_down, rate_up)

    def __call__(self, t: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        pos, vel = FigureEight.__call__(self, t)
        if self.heave:
            tau, rate = self.phase(np.clip(np.asarray(t, dtype=np.float64), 0.0, self.duration))
            w = 2.0 * math.pi / self.period
            pos[..., 2] += self.heave * np.sin(w * tau)
            vel[..., 2] += self.heave * w * np.cos(w * tau) * rate
        return pos, vel


@dataclass(frozen=True)
class Transfer:
    """Minimum-jerk move from `start` to `end` (rest to rest) in `duration` s."""

    start: tuple[float, float, float]
    end: tuple[float, float, float]
    duration: float

    def __call__(self, t: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        s = np.clip(np.asarray(t, dtype=np.float64) / self.duration, 0.0, 1.0)[..., None]
        a, b = np.asarray(self.start), np.asarray(self.end)
        shape = 10 * s**3 - 15 * s**4 + 6 * s**5
        rate = (30 * s**2 - 60 * s**3 + 30 * s**4) / self.duration
        return a + (b - a) * shape, (b - a) * rate


@dataclass(frozen=True)
class Leg:
    """One piece of the mission: a position reference and the heading along it (yaw0 -> yaw1, plus a swing
    of `swing` rad that is zero at both ends)."""

    ref: Reference
    yaw0: float
    yaw1: float
    swing: float = 0.0

    @property
    def duration(self) -> float:
        return float(self.ref.duration)

    def yaw(self, t: float) -> tuple[float, float]:
        """(yaw, yaw rate) at leg time t."""
        T = self.duration
        s = min(max(t / T, 0.0), 1.0)
        shape = 10 * s**3 - 15 * s**4 + 6 * s**5
        rate = (30 * s**2 - 60 * s**3 + 30 * s**4) / T
        d = math.remainder(self.yaw1 - self.yaw0, 2 * math.pi)
        w = 2 * math.pi / T
        return (self.yaw0 + d * shape + self.swing * math.sin(w * t),
                d * rate + self.swing * w * math.cos(w * t) * (0.0 < t < T))


def mission(rng: np.random.Generator, start: np.ndarray, yaw: float, slow: bool = False) -> Iterator[Leg]:
    """Endless legs from `start`: a transfer to a random centre (and heading), then 1-2 laps of a random
    figure eight there. `slow`: one small, slow figure eight at the start point, repeated (for tests)."""
    here = tuple(float(v) for v in start)
    if slow:
        while True:
            yield Leg(Lap(center=here, a=0.8, b=0.4, period=10.0, laps=1, ramp=2.0), yaw, yaw)
    while True:
        centre = (float(rng.uniform(-ARENA, ARENA)), float(rng.uniform(-ARENA, ARENA)), float(rng.uniform(0.9, 3.0)))
        heading = float(rng.uniform(-math.pi, math.pi))
        dist = float(np.linalg.norm(np.subtract(centre, here)))
        v_peak = float(rng.uniform(0.8, 2.0))
        yield Leg(Transfer(here, centre, max(3.0, 1.875 * dist / v_peak)), yaw, heading)
        a, b = float(rng.uniform(0.6, 2.5)), float(rng.uniform(0.3, 1.2))
        speed = float(rng.uniform(0.5, 2.5))  # m/s, about the peak speed on the figure eight
        period = max(3.0, 2 * math.pi * math.hypot(a, 2 * b) / speed)
        heave = float(rng.uniform(0.0, 0.4))
        swing = float(rng.uniform(0.0, 0.8))
        yield Leg(Lap(center=centre, a=a, b=b, period=period, laps=int(rng.integers(1, 3)), ramp=2.0, heave=heave),
                  heading, heading, swing)
        here, yaw = centre, heading


# ---- the flight ---------------------------------------------------------------------------------------
def yaw_of(q: np.ndarray) -> float:
    w, x, y, z = q
    return math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


class PositionController:
    """Reference (pos, vel, acc, yaw, yaw rate) + measured state -> attitude-mode command (roll, pitch,
    yaw rate, thrust fraction), as the nominal vehicle (mass, max thrust) needs it."""

    def __init__(self, mass: float, max_collective: float, dt: float, gains: Gains = Gains()) -> None:
        self.mass, self.max_collective, self.dt, self.g = mass, max_collective, dt, gains
        self.integral = np.zeros(3)

    def reset(self) -> None:
        self.integral[:] = 0.0

    def __call__(self, state: np.ndarray, pos: np.ndarray, vel: np.ndarray, acc: np.ndarray, yaw_ref: float,
                 yaw_rate_ref: float) -> np.ndarray:
        g = self.g
        err = pos - state[0:3]
        self.integral = np.clip(self.integral + err * self.dt, -g.i_limit, g.i_limit)
        a = acc + g.kp * err + g.kd * (vel - state[3:6]) + g.ki * self.integral
        a[2] = min(max(a[2], -0.7 * GRAVITY), 0.9 * GRAVITY)
        force = self.mass * (a + np.array([0.0, 0.0, GRAVITY]))
        horiz, h_max = math.hypot(force[0], force[1]), force[2] * math.tan(g.max_tilt)
        if horiz > h_max:  # keep the vertical request, shorten the horizontal one
            force[:2] *= h_max / horiz
        yaw = yaw_of(state[6:10])
        c, s = math.cos(yaw), math.sin(yaw)
        fx, fy = c * force[0] + s * force[1], -s * force[0] + c * force[1]  # in the heading frame
        # body z of R = Rz(yaw) Ry(pitch) Rx(roll) in the heading frame: (cos r sin p, -sin r, cos r cos p)
        pitch = math.atan2(fx, force[2])
        roll = math.atan2(-fy, math.hypot(fx, force[2]))
        yaw_rate = yaw_rate_ref + g.k_yaw * math.remainder(yaw_ref - yaw, 2 * math.pi) \
            - g.k_yaw_rate * (state[12] - yaw_rate_ref)
        thrust = math.sqrt(force @ force) / self.max_collective
        return np.array([roll, pitch, yaw_rate, thrust])


@dataclass
class LogResult:
    """What a flight produced: the rows (state, command, regime per control step) and what happened."""

    times_ns: list[int] = field(default_factory=list)
    states: list[np.ndarray] = field(default_factory=list)
    commands: list[np.ndarray | None] = field(default_factory=list)  # None: the last row (its state only)
    regimes: list[str] = field(default_factory=list)
    position_errors: list[float] = field(default_factory=list)  # |p - p_ref| per row with a command
    crashes: int = 0
    wind_row: int | None = None  # first row flown in the wind
    wall_s: float = 0.0

    @property
    def rows(self) -> int:
        return len(self.times_ns)

    def add(self, t_ns: int, state: np.ndarray, command: np.ndarray | None, regime: str) -> None:
        self.times_ns.append(t_ns)
        self.states.append(state)
        self.commands.append(command)
        self.regimes.append(regime)


def wind_label(wind: tuple[float, float, float]) -> str:
    return "wind(" + ",".join(f"{w:g}" for w in wind) + ")"


def fly(minutes: float, rate: float = 25.0, wind_at_min: float | None = None,
        wind: tuple[float, float, float] = (0.0, 0.0, 0.0), seed: int = 0, noise: float = 1.0,
        slow: bool = False, progress: bool = False) -> LogResult:
    """Fly for `minutes` of log time (crash gaps included) and return the rows (see the module docstring)."""
    import gymnasium as gym

    env = gym.make("robocl/Quadrotor-v0", command="attitude", control_hz=rate, task=hover(duration=math.inf))
    quad = env.unwrapped
    dt = quad.dt
    dt_ns = int(round(dt * 1e9))
    gap_ns = math.ceil(CRASH_GAP_S / dt) * dt_ns  # a whole number of periods: later rows stay on the tick grid
    end_ns = int(round(minutes * 60e9))
    wind_ns = None if wind_at_min is None else int(round(wind_at_min * 60e9))
    low, high = quad.action_space.low.astype(np.float64), quad.action_space.high.astype(np.float64)
    rng = np.random.default_rng(seed)
    nominal = quad.nominal
    ctrl = PositionController(nominal.mass, 4.0 * nominal.max_thrust, dt)
    std = np.asarray(Noise().std) * noise
    decay = math.exp(-dt / Noise().tau)
    out = LogResult()
    regime = "calm"
    t_ns = 0
    bar = _bar(end_ns // dt_ns, progress)
    t_wall = time.perf_counter()

    def start(pose: np.ndarray, yaw: float, episode: int) -> tuple[np.ndarray, Iterator[Leg]]:
        env.reset(seed=seed * 100_003 + episode, options={"pose": (*pose, yaw)})
        ctrl.reset()
        return std * rng.normal(size=4), mission(rng, pose, yaw, slow)

    home = np.array([0.0, 0.0, 1.0])
    dither, legs = start(home, 0.0, 0)
    leg, t_leg = next(legs), 0.0
    h = dt / 2
    while t_ns <= end_ns:
        if wind_ns is not None and out.wind_row is None and t_ns >= wind_ns:
            quad.set_params(replace(quad.params, wind=tuple(wind)))  # mid-flight, the state kept
            regime, out.wind_row = wind_label(wind), out.rows
        d = quad.data
        state = np.concatenate([d.qpos[0:3], d.qvel[0:3], d.qpos[3:7], d.qvel[3:6]])
        if t_ns + dt_ns > end_ns:  # the last row: the state only
            out.add(t_ns, state, None, regime)
            break
        while t_leg > leg.duration:
            t_leg -= leg.duration
            leg = next(legs)
        pos, vel = leg.ref(t_leg)
        acc = (leg.ref(t_leg + h)[1] - leg.ref(max(0.0, t_leg - h))[1]) / (t_leg + h - max(0.0, t_leg - h))
        yaw_ref, yaw_rate_ref = leg.yaw(t_leg)
        command = np.clip(ctrl(state, pos, vel, acc, yaw_ref, yaw_rate_ref) + dither, low, high)
        out.add(t_ns, state, command, regime)
        out.position_errors.append(float(np.linalg.norm(pos - state[0:3])))
        _, _, crashed, _, _ = env.step(command.astype(np.float32))
        dither = decay * dither + math.sqrt(1.0 - decay * decay) * std * rng.normal(size=4)
        t_ns += dt_ns
        t_leg += dt
        bar.update(1)
        if crashed:  # reset somewhere in the arena and keep logging, after a gap in the clock
            out.crashes += 1
            t_ns += gap_ns
            bar.update(gap_ns // dt_ns)
            pose = np.array([rng.uniform(-ARENA, ARENA), rng.uniform(-ARENA, ARENA), rng.uniform(1.0, 2.5)])
            dither, legs = start(pose, float(rng.uniform(-math.pi, math.pi)), out.crashes)
            leg, t_leg = next(legs), 0.0
    bar.close()
    env.close()
    out.wall_s = time.perf_counter() - t_wall
    return out


def _bar(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="flying", unit="step", disable=not enabled, mininterval=0.5, file=sys.stderr)


# ---- CSV ------------------------------------------------------------------------------------------------
def _seconds(t_ns: int) -> str:
    return f"{t_ns // 1_000_000_000}.{t_ns % 1_000_000_000:09d}"


def write_csv(path: Path, log: LogResult, start: int = 0, stop: int | None = None) -> int:
    """Rows [start, stop) as CSV, atomically; a part that ends before the log does gets the next row's
    state (command cells empty) so that its last transition is kept. Returns the number of rows."""
    stop = log.rows if stop is None else stop
    count = 0

    def write(fh) -> None:
        nonlocal count
        text = io.TextIOWrapper(fh, encoding="utf-8", newline="")
        rows = csv.writer(text, lineterminator="\n")  # quotes the regime labels: wind(3,0,0) holds commas
        rows.writerow(HEADER)
        last = min(stop + 1, log.rows)
        for i in range(start, last):
            command = log.commands[i] if i < stop else None
            cells = [_seconds(log.times_ns[i]), *(f"{v:.9g}" for v in log.states[i])]
            cells += [f"{v:.9g}" for v in command] if command is not None else [""] * len(COMMAND_COLUMNS)
            cells.append(log.regimes[i] if i < stop else "")
            rows.writerow(cells)
            count += 1
        text.flush()
        text.detach()

    atomic_write(path, write)
    return count


# ---- command line -----------------------------------------------------------------------------------------
def _wind(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not all(math.isfinite(v) and abs(v) <= 15.0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r} is not WX,WY,WZ (three numbers, m/s, each within +-15)")
    return values  # type: ignore[return-value]


def _rate(text: str) -> float:
    value = positive_float(text)
    n = round(500.0 / value)
    if n < 1 or abs(n * value - 500.0) > 1e-6 * 500.0:
        raise argparse.ArgumentTypeError(f"{text} Hz does not divide the 500 Hz physics rate (e.g. 20, 25, 50)")
    return value


def parser() -> OneLineParser:
    p = OneLineParser(prog="python -m robocl.offline.quad_attitude_log", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, help="the whole log (CSV)")
    p.add_argument("--out-calm", type=Path, help="also: the rows before the wind switch (to train on)")
    p.add_argument("--out-wind", type=Path, help="also: the rows from the wind switch on (to evaluate on)")
    p.add_argument("--minutes", type=positive_float, required=True, help="log length (crash gaps included)")
    p.add_argument("--wind-at-min", type=float, help="minute at which the wind is switched on")
    p.add_argument("--wind", type=_wind,
                   help="wind air velocity WX,WY,WZ in m/s (world frame), e.g. 3,0,0 (negative: --wind=-3,0,0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rate", type=_rate, default=25.0,
                   help="control and logging rate, Hz (default 25; the robot spec's dt = 1/rate)")
    p.add_argument("--noise", type=float, default=1.0, help="exploration noise scale (0 = none; default 1)")
    p.add_argument("--no-progress", action="store_true")
    return p


def check_args(p: OneLineParser, args: argparse.Namespace) -> None:
    """Everything wrong with the arguments is one line and exit 2, before any flying."""
    outs = [o for o in (args.out, args.out_calm, args.out_wind) if o is not None]
    if not outs:
        p.error("nothing to write: give --out (and/or --out-calm, --out-wind)")
    if len({o.expanduser().resolve() for o in outs}) != len(outs):
        p.error("--out, --out-calm and --out-wind must be different files")
    for o in outs:
        if o.is_dir():
            p.error(f"{o} is a directory (expected a CSV file path)")
    if (args.wind is None) != (args.wind_at_min is None):
        p.error("--wind and --wind-at-min go together (e.g. --wind-at-min 12 --wind 3,0,0)")
    if args.wind_at_min is not None and not 0 < args.wind_at_min < args.minutes:
        p.error(f"--wind-at-min {args.wind_at_min:g}: must be inside the log (0 < T < --minutes {args.minutes:g})")
    if (args.out_calm or args.out_wind) and args.wind_at_min is None:
        p.error("--out-calm/--out-wind split the log at the wind switch: give --wind-at-min and --wind")
    if not (math.isfinite(args.noise) and args.noise >= 0):
        p.error(f"--noise {args.noise}: must be >= 0")


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    check_args(p, args)
    log = fly(args.minutes, args.rate, args.wind_at_min, args.wind or (0.0, 0.0, 0.0), args.seed, args.noise,
              progress=not args.no_progress)
    written = []
    if args.out is not None:
        written.append((args.out, write_csv(args.out, log)))
    split = log.wind_row if log.wind_row is not None else log.rows
    if args.out_calm is not None:
        written.append((args.out_calm, write_csv(args.out_calm, log, 0, split)))
    if args.out_wind is not None:
        written.append((args.out_wind, write_csv(args.out_wind, log, split)))
    errors = np.asarray(log.position_errors)
    print(f"flew {len(errors)} control steps ({args.rate:g} Hz) in {log.wall_s:.1f} s; crashes: {log.crashes}; "
          f"position error rms {np.sqrt(np.mean(errors**2)):.3f} m, max {errors.max():.3f} m"
          + (f"; {wind_label(args.wind)} from row {log.wind_row} (t = {args.wind_at_min * 60:g} s)"
             if log.wind_row is not None else ""))
    for path, rows in written:
        print(f"wrote {rows} rows to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
