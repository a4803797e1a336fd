"""`robocl-bench suite=planner` measures ours and the peer side by side and writes results.json."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from robocl.eval.results import validate_results


def test_planner_bench_side_by_side(tmp_path):
    exe = Path(sys.executable).with_name("robocl-bench")
    run_dir = tmp_path / "bench"
    proc = subprocess.run([str(exe), "bench.repeats=15", "bench.warmup=2", "planner.population=200",
                           "runtime.progress=false", f"hydra.run.dir={run_dir}"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((run_dir / "results.json").read_text())
    validate_results(doc)
    assert doc["command"] == "bench"
    assert set(doc["summary"]) == {"robocl_mppi", "pytorch_mppi"}
    for row in doc["runs"]:
        assert row["calls"] == 15
        assert 0 < row["plan_ms_median"] <= row["plan_ms_p95"]
    assert doc["ratios"]["pytorch_mppi_over_robocl_mppi_median"] > 0


def test_bench_rejects_unknown_suite(tmp_path):
    exe = Path(sys.executable).with_name("robocl-bench")
    proc = subprocess.run([str(exe), "suite=nope", f"hydra.run.dir={tmp_path}"], capture_output=True, text=True)
    assert proc.returncode == 2 and "suite=nope" in proc.stderr


def test_drag_bench_rejects_a_missing_checkpoint(tmp_path):
    exe = Path(sys.executable).with_name("robocl-bench")
    proc = subprocess.run([str(exe), "suite=drag", f"suite.checkpoint={tmp_path}/none.pt", f"hydra.run.dir={tmp_path}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "suite.checkpoint=" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_drag_bench_compiled_beside_eager(tmp_path):
    """`robocl-bench suite=drag`: both workloads, compiled and eager, ratios reported (compiles twice)."""
    exe = Path(sys.executable).with_name("robocl-bench")
    run_dir = tmp_path / "bench"
    proc = subprocess.run([str(exe), "suite=drag", "bench.repeats=10", "bench.warmup=2", "suite.population=8",
                           "suite.population_repeats=3", "runtime.progress=false", f"hydra.run.dir={run_dir}"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((run_dir / "results.json").read_text())
    validate_results(doc)
    workloads = ("one_drag", "P8_cached_geometry")
    assert set(doc["summary"]) == {f"{m}_{w}" for m in ("compiled", "eager") for w in workloads}
    assert doc["ratios"]["one_drag_eager_over_compiled_median"] > 0
