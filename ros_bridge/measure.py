"""Measure the node over a real ROS graph: control-loop jitter, odometry -> command latency, watchdog.

    python -m robocl_ros.measure [--transport ros2|ros1] [--robot ugv|quadrotor] [--cycles 1000]
                                 [--kills 5] [--out DIR] [-- NODE_OVERRIDES ...]

Starts the simulated robot (`robocl-ros-sim`, wall clock, real time), the node (`robocl-ros`) and a
listener (`python -m robocl_ros.probe`) as separate processes (plus a `roscore` for ROS 1), drives the
course (laps of it) until the node has run `--cycles` control cycles, then stops the sim and, `--kills`
times, starts a new one, lets the node drive, SIGKILLs the sim and times the node's safe command.
Every time is the steady clock, which all processes on the machine share. Reported (median, p95, max):
- jitter: lateness of each control tick against its fixed-rate schedule (the node's cycles.csv);
- latency_e2e: odometry published by the sim -> the command computed from it received by the sim;
- latency_node: odometry received by the node -> command published (includes waiting for the tick);
- compute: tick -> command published (plan + refine + checks);
- reaction: last odometry received by the listener -> first safe command received by it, after a kill
  (must be within two control periods); per kill also when the node published it.
- node: the node's own counts over its whole run: plan deadline overruns, safety events, and the
  planner budget (population) it degraded to under them.
Writes DIR/measure.json and prints a summary; exit 0 if every kill was answered within two periods.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from robocl_ros import graph, probe

RATE = {"ugv": 5.0, "quadrotor": 25.0}
COURSE = {"ugv": ["task.map=city_a", "ros.sim.laps=2"], "quadrotor": ["ros.sim.laps=20"]}


def stats(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "median": None, "p95": None, "max": None}
    a = np.asarray(values, float)
    return {"n": len(a), "median": round(float(np.median(a)), 3), "p95": round(float(np.percentile(a, 95)), 3),
            "max": round(float(a.max()), 3)}


def read_csv(path: Path) -> list[list[str]]:
    lines = path.read_text().strip().splitlines()
    return [line.split(",") for line in lines[1:]]


def cycle_timing(node_dir: Path, sim_dir: Path, t0: float, t1: float) -> dict[str, dict]:
    """Jitter / latency / compute (ms) from the node's cycles.csv and the first sim's odom/cmd logs."""
    rows = [r for r in read_csv(node_dir / "cycles.csv") if t0 <= float(r[2]) <= t1]
    ok = [r for r in rows if r[7] == "ok"]
    jitter = [(float(r[2]) - float(r[1])) * 1e3 for r in rows if r[1] != "nan"]
    latency_node = [(float(r[5]) - float(r[4])) * 1e3 for r in ok]
    compute = [(float(r[5]) - float(r[2])) * 1e3 for r in ok]
    pub_of = {round(float(s), 4): float(p) for s, p in read_csv(sim_dir / "odom_log.csv")}
    rx = np.array(sorted(float(r[0]) for r in read_csv(sim_dir / "cmd_log.csv")))
    e2e = []
    for r in ok:
        sent, published = pub_of.get(round(float(r[3]), 4)), float(r[5])
        k = int(np.searchsorted(rx, published - 1e-4))
        if sent is not None and k < len(rx) and rx[k] - published < 0.05:
            e2e.append((rx[k] - sent) * 1e3)
    return {"cycles": {"n": len(rows), "ok": len(ok)}, "jitter_ms": stats(jitter), "latency_e2e_ms": stats(e2e),
            "latency_node_ms": stats(latency_node), "compute_ms": stats(compute)}


def reaction(rows: dict, killed_at: float) -> dict[str, float | None]:
    """After a kill: last odometry, first zero command and first 'odometry stale' status at the listener."""
    last_odom = max((r[0] for r in rows["odom"] if r[0] <= killed_at + 0.05), default=None)
    zero = next((r[0] for r in rows["cmd"] if r[0] > killed_at and all(v == 0.0 for v in r[1:])), None)
    stale = next((r[0] for r in rows["status"] if r[0] > killed_at and r[2] == "odometry stale"), None)
    nonzero_after = [r[0] for r in rows["cmd"] if zero is not None and r[0] > zero and any(v != 0.0 for v in r[1:])
                     and r[0] < killed_at + 1.0]
    return {"from_last_odom_ms": None if last_odom is None or zero is None else round((zero - last_odom) * 1e3, 1),
            "from_kill_ms": None if zero is None else round((zero - killed_at) * 1e3, 1),
            "status_from_kill_ms": None if stale is None else round((stale - killed_at) * 1e3, 1),
            "moving_commands_after": len(nonzero_after)}


def main(argv: list[str] | None = None) -> int:
    args_in, extra = graph.split_passthrough(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="python -m robocl_ros.measure", description=__doc__.splitlines()[0])
    ap.add_argument("--transport", choices=("ros2", "ros1"), default="ros2")
    ap.add_argument("--robot", choices=tuple(RATE), default="ugv")
    ap.add_argument("--cycles", type=int, default=1000)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(args_in)
    out = args.out or Path(tempfile.mkdtemp(prefix="robocl-measure-"))
    out.mkdir(parents=True, exist_ok=True)
    problem = graph.ros2_problem() if args.transport == "ros2" else graph.ros1_problem()
    if problem:
        print(f"robocl_ros.measure: error: {args.transport} is not usable here ({problem})", file=sys.stderr)
        return 2
    roscore = None
    if args.transport == "ros2":
        env = graph.ros2_env(random.randint(100, 200))
    else:
        roscore = graph.Roscore(out)
        env = roscore.env
    robot = [f"robot={args.robot}", f"ros.transport={args.transport}"]
    rate = RATE[args.robot]
    procs: list[graph.Proc] = []
    try:
        listener = graph.Proc([sys.executable, "-m", "robocl_ros.probe", "--transport", args.transport, "--robot",
                               args.robot, "--out", str(out / "probe.csv")], out / "probe.log", env)
        procs.append(listener)

        def sim(k: int, more: list[str]) -> graph.Proc:
            p = graph.Proc([graph.bin_path("robocl-ros-sim"), *robot, *more, "ros.sim.max_time_s=100000",
                            f"hydra.run.dir={out / f'sim{k}'}"], out / f"sim{k}.log", env)
            procs.append(p)
            return p

        sim0 = sim(0, COURSE[args.robot])
        node = graph.Proc([graph.bin_path("robocl-ros"), *robot, "runtime.threads=1", *extra,
                           f"ros.checkpoint.path={out / 'node.pt'}", f"hydra.run.dir={out / 'node'}"],
                          out / "node.log", env)
        procs.append(node)
        if not sim0.wait_for("first command", 900):
            raise RuntimeError(f"the node never commanded the sim; see {out}/node.log and sim0.log")
        print(f"measuring {args.cycles} cycles at {rate:g} Hz ({args.cycles / rate:.0f} s) ...", flush=True)
        t_measure0 = time.monotonic()
        end = t_measure0 + args.cycles / rate * 1.05 + 5
        while time.monotonic() < end and sim0.alive() and node.alive():
            time.sleep(0.5)
        t_measure1 = time.monotonic()
        sim0.stop()
        kills = []
        for k in range(1, args.kills + 1):
            started = time.monotonic()
            s = sim(k, ["task.map=ugv_short" if args.robot == "ugv" else "task.map=quad_square"])
            s.wait_for("first command", 120)
            # DDS discovery is per pair: make sure the listener sees this sim's odometry too
            graph.wait_until(lambda t0=started: any(r[0] > t0 for r in probe.read(out / "probe.csv")["odom"]), 20)
            time.sleep(2.0)  # the node drives again
            killed = s.kill()
            time.sleep(1.0)
            kills.append(killed)
        node.stop(60)
        listener.stop()
        rows = probe.read(out / "probe.csv")
        doc = {"transport": args.transport, "robot": args.robot, "rate_hz": rate, "period_ms": 1e3 / rate,
               "overrides": extra, **cycle_timing(out / "node", out / "sim0", t_measure0, t_measure1),
               "kills": [reaction(rows, t) for t in kills]}
        for k, t in zip(doc["kills"], kills):  # where the node published it (the listener may see DDS lag)
            at = graph.node_safe_time(out / "node", t)
            k["node_published_from_kill_ms"] = None if at is None else round((at - t) * 1e3, 1)
        react = [k["from_last_odom_ms"] for k in doc["kills"]]
        doc["reaction_from_last_odom_ms"] = stats([r for r in react if r is not None])
        doc["reaction_within_two_periods"] = all(r is not None and r <= 2e3 / rate for r in react)
        node_results = json.loads((out / "node" / "results.json").read_text())
        doc["node_summary"] = node_results["runs"][0]
        sim_results = json.loads((out / "sim0" / "results.json").read_text())
        doc["course"] = {k: sim_results["runs"][0].get(k) for k in ("success_rate", "waypoints_reached",
                                                                     "waypoints_total", "nonfinite_commands")}
    finally:
        for p in reversed(procs):
            p.stop(30)
        if roscore is not None:
            roscore.stop()
    (out / "measure.json").write_text(json.dumps(doc, indent=2))
    summary = {k: doc[k] for k in ("transport", "robot", "rate_hz", "cycles", "jitter_ms", "latency_e2e_ms",
                                   "latency_node_ms", "compute_ms", "reaction_from_last_odom_ms",
                                   "reaction_within_two_periods", "course")}
    # the whole node run (the kills included): overruns, safety events and the planner budget under them
    summary["node"] = {k: doc["node_summary"].get(k) for k in (
        "cycles", "cycles_ok", "safety_events", "plan_overruns", "planner_budget_reductions",
        "planner_budget_restores", "population_configured", "population_min", "population_final")}
    print(json.dumps(summary, indent=1))
    print(f"robocl_ros.measure: wrote {out / 'measure.json'}")
    return 0 if doc["reaction_within_two_periods"] else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
