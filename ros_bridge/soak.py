"""Soak the node over a real ROS 2 graph: an hour or more of simulated time, faster than real time.

    python -m robocl_ros.soak [--sim-time 3600] [--rtf 4] [--every 10] [--out DIR] [-- NODE_OVERRIDES ...]

`robocl-ros-sim` (the UGV on /clock sim time at --rtf x real time, laps of city_a there and back, the
actuation gains of --gains inside task.intervention of the whole run) and `robocl-ros` (use_sim_time,
learning on board) run as two processes until the sim reaches --sim-time. The node's resident memory is
read from /proc/PID/status every --every wall seconds, its plan ms per control cycle from its cycles.csv.
Writes DIR/ros_soak.json: node RSS at its first command, after --warmup of the run and at the end (before
it is stopped), plan ms median of the first and last 1000 planned cycles, and the node's and the sim's
results rows; prints the summary. Exit 0 when both processes finished cleanly.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from robocl_ros import graph

LAP_S = 100.0  # sim seconds of one city_a lap, at least (there or back): laps enough for the whole run


def node_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return None


def plan_windows(cycles_csv: Path, n: int = 1000) -> dict[str, float | int | None]:
    """Median plan ms of the first and last `n` planned cycles (the node's cycles.csv, mode ok)."""
    lines = cycles_csv.read_text().strip().splitlines()[1:]
    plan = [float(r[6]) for r in (line.split(",") for line in lines) if r[7] == "ok" and r[6] != "nan"]

    def median(values: list[float]) -> float | None:
        return round(float(np.median(values)), 3) if values else None

    return {"cycles_planned": len(plan), "first": median(plan[:n]), "last": median(plan[-n:])}


def soak(out: Path, sim_time: float, rtf: float, every: float, warmup: float, gains: str,
         node_overrides: list[str], env: dict[str, str]) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    laps = min(1000, math.ceil(sim_time / LAP_S) + 2)
    sim = graph.Proc([graph.bin_path("robocl-ros-sim"), "robot=ugv", "task.map=city_a", f"ros.sim.laps={laps}",
                      "ros.use_sim_time=true", f"ros.sim.real_time_factor={rtf:g}", f"ros.sim.max_time_s={sim_time:g}",
                      "ros.sim.linger_s=0.5", "ros.sim.wait_for_node_s=1800", f"task.gains={gains}",
                      f"hydra.run.dir={out / 'sim'}"],
                     out / "sim.log", env)
    node = graph.Proc([graph.bin_path("robocl-ros"), "robot=ugv", "ros.use_sim_time=true", "runtime.threads=1",
                       f"ros.checkpoint.path={out / 'node.pt'}", "ros.checkpoint.load=false", *node_overrides,
                       f"hydra.run.dir={out / 'node'}"], out / "node.log", env)
    samples: list[dict[str, float]] = []
    try:
        if not sim.wait_for("first command", 1800):  # the node may pretrain its nominal model first
            raise RuntimeError(f"the node never commanded the sim; see {out}/node.log and sim.log")
        t0 = time.monotonic()
        deadline = t0 + sim_time / rtf * 2 + 300
        while sim.alive() and node.alive() and time.monotonic() < deadline:
            rss = node_rss_mb(node.pid)
            if rss is not None:
                samples.append({"wall_s": round(time.monotonic() - t0, 1), "rss_mb": round(rss, 2)})
            sim.wait(every)
        sim_code = sim.wait(60)
        last = node_rss_mb(node.pid)  # before the node is stopped (it then writes its results)
        if last is not None:
            samples.append({"wall_s": round(time.monotonic() - t0, 1), "rss_mb": round(last, 2)})
    finally:
        sim.stop()
        node_code = node.stop(120)
    if sim_code != 0 or node_code != 0:
        raise RuntimeError(f"sim exited {sim_code}, node {node_code}: see {out}/sim.log and node.log")
    sim_row, node_row = graph.read_results(out / "sim"), graph.read_results(out / "node")
    wall = samples[-1]["wall_s"] if samples else 0.0
    warm = next((s for s in samples if s["wall_s"] >= warmup * wall), samples[-1]) if samples else None
    summary = {
        "sim_time_s": sim_row["sim_time_s"], "wall_s": sim_row["wall_s"],
        "real_time_factor": sim_row["real_time_factor"],
        "node_rss_mb": {"start": samples[0]["rss_mb"] if samples else None,
                        "after_warmup": warm["rss_mb"] if warm else None,
                        "warmup_wall_s": warm["wall_s"] if warm else None,
                        "end": samples[-1]["rss_mb"] if samples else None,
                        "peak": max((s["rss_mb"] for s in samples), default=None)},
        "plan_ms_median": plan_windows(out / "node" / "cycles.csv"),
        "node": {k: node_row.get(k) for k in ("cycles", "cycles_ok", "missed_ticks", "learned_transitions",
                                               "safety_events", "plan_overruns", "regime_detections", "dyn_mse",
                                               "compute_ms_median", "population_final")},
        "course": {k: sim_row.get(k) for k in ("success_rate", "waypoints_reached", "waypoints_total", "crashes",
                                                "nonfinite_commands", "commands_received")},
    }
    doc = {"summary": summary, "samples": samples, "overrides": node_overrides, "gains": gains}
    (out / "ros_soak.json").write_text(json.dumps(doc, indent=2) + "\n")
    return doc


def main(argv: list[str] | None = None) -> int:
    args_in, extra = graph.split_passthrough(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="python -m robocl_ros.soak", description=__doc__.splitlines()[0])
    ap.add_argument("--sim-time", type=float, default=3600.0, help="simulated seconds (default 3600)")
    ap.add_argument("--rtf", type=float, default=4.0, help="real-time factor of the sim (default 4)")
    ap.add_argument("--every", type=float, default=10.0, help="wall seconds between node RSS samples")
    ap.add_argument("--warmup", type=float, default=0.1, help="fraction of the run before 'after_warmup' RSS")
    ap.add_argument("--gains", default="[[2.0,2.0],[-1.0,1.0]]", help="task.gains of the sim")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(args_in)
    problem = graph.ros2_problem()
    if problem:
        print(f"robocl_ros.soak: error: ROS 2 is not usable here ({problem})", file=sys.stderr)
        return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="robocl-ros-soak-"))
    doc = soak(out, args.sim_time, args.rtf, args.every, args.warmup, args.gains, extra,
               graph.ros2_env(random.randint(100, 200)))
    print(json.dumps(doc["summary"], indent=1))
    print(f"robocl_ros.soak: wrote {out / 'ros_soak.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
