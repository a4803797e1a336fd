"""A long synthetic UGV log (kinematic unicycle with a velocity lag and gain interventions), for throughput.

    python -m robocl.offline.synthetic OUT [--minutes 60] [--rate 50] [--format mcap|sqlite3|ros1]

writes `/odom` and `/cmd_vel` at `rate` Hz and `/robocl/regime` labels; the commanded (v, w) is
scaled by gains that change every `--regime-minutes`. Written message by message (constant memory).
"""

from __future__ import annotations

import math
import time

import numpy as np

from robocl.offline.recording import BagRecorder
from robocl.utils.args import OneLineParser, positive_float

GAINS = [(1.0, 1.0), (2.0, 2.0), (-1.0, 1.0), (0.5, 1.5)]


def write_log(path: str, minutes: float = 60.0, rate: float = 50.0, regime_minutes: float = 10.0,
              fmt: str = "mcap", seed: int = 0, tau: float = 0.15) -> int:
    """Returns the number of control steps written (states = steps + 1)."""
    rng = np.random.default_rng(seed)
    dt = 1.0 / rate
    steps = int(round(minutes * 60 * rate))
    per_regime = max(1, int(round(regime_minutes * 60 * rate)))
    dt_ns = int(round(dt * 1e9))
    t0 = 1_764_000_000_000_000_000
    x = y = yaw = v = w = 0.0
    cmd = np.zeros(2)
    alpha = 1.0 - math.exp(-dt / tau)
    with BagRecorder(path, fmt) as rec:
        for k in range(steps + 1):
            t = t0 + k * dt_ns
            rec.state(t, np.array([x, y, yaw, v, 0.0, w]))
            if k == steps:
                break
            gains = GAINS[(k // per_regime) % len(GAINS)]
            rec.regime(t, "nominal" if gains == (1.0, 1.0) else f"gains({gains[0]:g},{gains[1]:g})")
            if rng.random() < 2.0 * dt:  # a new command about twice a second
                cmd = np.array([rng.uniform(-1.0, 1.0), rng.uniform(-1.5, 1.5)])
            rec.command(t, cmd)
            v += alpha * (gains[0] * cmd[0] - v)
            w += alpha * (gains[1] * cmd[1] - w)
            x += v * math.cos(yaw) * dt
            y += v * math.sin(yaw) * dt
            yaw = math.remainder(yaw + w * dt, 2 * math.pi)
    return steps


def main() -> None:
    p = OneLineParser(prog="python -m robocl.offline.synthetic", description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--minutes", type=positive_float, default=60.0)
    p.add_argument("--rate", type=positive_float, default=50.0)
    p.add_argument("--regime-minutes", type=positive_float, default=10.0)
    p.add_argument("--format", default="mcap", choices=["mcap", "sqlite3", "ros1"])
    args = p.parse_args()
    t = time.perf_counter()
    n = write_log(args.out, args.minutes, args.rate, args.regime_minutes, args.format)
    print(f"wrote {n} steps ({n / args.rate / 60:.1f} min at {args.rate:g} Hz) to {args.out} "
          f"in {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()
