"""The examples/ scripts run as a user runs them, against the public API (`from robocl import ...`)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, *args: str, cwd: Path) -> str:
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_plan_and_adapt_reaches_both_goals_and_learns_the_flipped_actuation(tmp_path):
    out = run_example("plan_and_adapt.py", cwd=tmp_path)
    rows = re.findall(r"([\d.]+) m away after (\d+) steps; model error first 10 steps ([\d.]+), last 10 ([\d.]+)", out)
    assert len(rows) == 2, out
    for distance, _, _, _ in rows:
        assert float(distance) < 0.5, out  # both goals reached, the second one after the actuation flipped
    first, last = float(rows[1][2]), float(rows[1][3])
    assert last < 0.1 * first, out  # online learning took in the flipped actuation


def test_step_a_trained_model_loads_an_artifact_without_config(foreign, tmp_path):
    out = run_example("step_a_trained_model.py", str(foreign["model"]), cwd=tmp_path)
    commands = re.findall(r"step \d: command \[([-\d. ]+)\]", out)
    assert len(commands) == 5, out
    assert "trained for robot 'ugv'" in out
    assert all(-1.0 <= float(v) <= 1.0 for c in commands for v in c.split()[:1])  # inside the robot's box


def test_import_robocl_stays_light_and_exposes_the_public_api():
    code = ("import sys, robocl; assert 'torch' not in sys.modules and 'mujoco' not in sys.modules; "
            "from robocl import MPPI, GaussianEnsemble, Controller, load_model; print(len(robocl.__all__))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and int(proc.stdout) > 15, proc.stderr
