"""`robocl-run` end to end: real pretraining, real MuJoCo rollouts, results on disk, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from robocl.eval.results import validate_results

SMALL = [
    "dynamics.pretrain.episodes=8",
    "dynamics.pretrain.steps=120",
    "dynamics.pretrain.epochs=25",
    "dynamics.ensemble_size=3",
    "dynamics.hidden_size=64",
    "planner.population=200",
    "runtime.progress=false",
]


def robocl_run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("robocl-run")
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


@pytest.fixture()
def short_course(tmp_path: Path) -> Path:
    path = tmp_path / "short.csv"
    path.write_text("x,y\n2.0,0.0\n4.0,1.0\n5.0,3.0\n")
    return path


def test_short_run_writes_valid_results(tmp_path, short_course):
    run_dir = tmp_path / "run"
    proc = robocl_run(*SMALL, f"task.map={short_course}", "seeds=[0]", "methods=[mppi,mppi_online]",
                      "logger=csv", "budget.max_steps=80", "task.gains=[[1,1]]", f"hydra.run.dir={run_dir}",
                      cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((run_dir / "results.json").read_text())
    validate_results(doc)
    assert doc["command"] == "run" and doc["experiment"] == "ugv_continual"
    assert {r["method"] for r in doc["runs"]} == {"mppi", "mppi_online"}
    for run in doc["runs"]:
        assert 0.0 <= run["success_rate"] <= 1.0
        assert run["plan_ms_median"] > 0 and run["plan_ms_p95"] >= run["plan_ms_median"]
    # nominal regime, 3 easy waypoints: the frozen pretrained model must reach them
    assert doc["summary"]["mppi"]["success_rate"] == 1.0
    assert (run_dir / "metrics.csv").read_text().count("\n") == 3
    assert (run_dir / "paths.png").stat().st_size > 10_000
    assert (run_dir / "steps.csv").exists()
    assert "| mppi |" in proc.stdout  # the summary table


def test_bad_config_is_one_line_and_exit_2(tmp_path):
    """The installed robocl-run (arguments from sys.argv); every other bad input: tests/test_bad_inputs.py."""
    proc = robocl_run("not_an_override", f"hydra.run.dir={tmp_path / 'r'}", cwd=tmp_path)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert "KEY=VALUE" in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "r").exists()


def test_nan_observation_stops_robot_and_is_recorded(ugv_data):
    """A NaN from the sensor never reaches the planner: zero command, event recorded, then recovery."""
    import gymnasium as gym

    from robocl.control import Controller
    from robocl.dynamics.ensemble import GaussianEnsemble
    from robocl.dynamics.training import train_offline
    from robocl.planning.costs import WaypointCost
    from robocl.planning.mppi import MPPI
    from robocl.robots.codec import PlanarBodyCodec
    from robocl.sim.rollouts import run_waypoint_episode
    from robocl.tasks.waypoints import GainSchedule, WaypointMission

    train, _ = ugv_data
    model = GaussianEnsemble(PlanarBodyCodec(), ensemble_size=2, hidden_size=64, hidden_layers=2)
    train_offline(model, train, epochs=25, batch_size=128, lr=3e-3)
    cost = WaypointCost()
    planner = MPPI(model.step, cost, [-1, -1.57], [1, 1.57], horizon=5, population=400, seed=0,
                   temperature=0.3, noise_sigma=[0.5, 0.8])
    controller = Controller(model, planner)
    bad_steps = {3, 4, 10}
    seen_actions = {}

    def faulty_sensor(step, obs):
        return np.full_like(obs, np.nan) if step in bad_steps else obs

    original_act = controller.act

    def spy_act(state):
        action = original_act(state)
        seen_actions[controller.stats.steps - 1] = action
        return action

    controller.act = spy_act
    env = gym.make("robocl/UGV-v0").unwrapped
    mission = WaypointMission(np.array([[3.0, 0.0], [5.0, 2.0]]), timeout_steps=60)
    metrics, _ = run_waypoint_episode(env, controller, cost, mission, GainSchedule([[1, 1]]), 150, 0,
                                      observation_filter=faulty_sensor)
    events = controller.stats.safety_events
    assert [e.step for e in events] == sorted(bad_steps)
    assert all(e.reason == "non-finite state" for e in events)
    for step in bad_steps:
        assert np.array_equal(seen_actions[step], np.zeros(2))
    assert all(np.all(np.isfinite(a)) for a in seen_actions.values())
    assert len(controller.stats.plan_ms) == len(seen_actions) - len(bad_steps)  # planner never saw NaN
    assert metrics["success_rate"] == 1.0  # and the mission still completes
    assert torch.isfinite(torch.cat([p.flatten() for p in model.parameters()])).all()


def test_wandb_logger_runs_offline(tmp_path, short_course):
    run_dir = tmp_path / "wb"
    proc = robocl_run(*SMALL, f"task.map={short_course}", "methods=[mppi]", "logger=wandb", "budget.max_steps=15",
                      f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    offline_runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert offline_runs and any(offline_runs[0].glob("*.wandb"))


@pytest.mark.slow
def test_main_job_acceptance(tmp_path):
    """Issue 3 acceptance: nominal >= 95% on both courses; online beats frozen under interventions."""
    nominal = robocl_run("methods=[mppi]", "task.gains=[[1,1]]", "runtime.progress=false",
                         f"hydra.run.dir={tmp_path / 'nominal'}", cwd=tmp_path)
    assert nominal.returncode == 0, nominal.stderr
    doc = json.loads((tmp_path / "nominal" / "results.json").read_text())
    assert all(r["success_rate"] >= 0.95 for r in doc["runs"]), doc["runs"]
    shifted = robocl_run("runtime.progress=false", f"hydra.run.dir={tmp_path / 'shift'}", cwd=tmp_path)
    assert shifted.returncode == 0, shifted.stderr
    summary = json.loads((tmp_path / "shift" / "results.json").read_text())["summary"]
    assert summary["mppi_online"]["success_rate"] > summary["mppi"]["success_rate"]
    assert summary["mppi"]["plan_ms_median"] is not None and summary["mppi"]["plan_ms_p95"] is not None
