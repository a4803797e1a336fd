"""`robocl-bench suite=planner` measures ours and the peers side by side, with a roofline, and writes
results.json; `suite=drag` times the drag predictor compiled and eager."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from robocl.bench.roofline import ensemble_layer_shapes, matmul_peak_gflops, mlp_plan_flops
from robocl.dynamics.ensemble import GaussianEnsemble
from robocl.eval.results import validate_results
from robocl.robots.codec import PlanarBodyCodec

FOUR = {"robocl_mppi", "mbrl_mppi", "pytorch_mppi_mbrl_model", "pytorch_mppi_robocl_model"}
# a quick matmul peak: the bench's default (1024^2 for 0.25 s per dtype) is what a real run measures
QUICK = ["runtime.threads=1", "runtime.progress=false", "bench.roofline.size=256", "bench.roofline.seconds=0.05"]


def bench(run_dir: Path, *overrides: str, timeout: int = 300) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("robocl-bench")
    return subprocess.run([str(exe), *QUICK, *overrides, f"hydra.run.dir={run_dir}"],
                          capture_output=True, text=True, timeout=timeout)


def test_planner_bench_side_by_side(tmp_path):
    """The default run names the four candidates, each timed interleaved, and robocl's fraction of the fp32 peak."""
    run_dir = tmp_path / "bench"
    proc = bench(run_dir, "bench.repeats=15", "bench.warmup=2", "planner.population=200")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((run_dir / "results.json").read_text())
    validate_results(doc)
    assert doc["command"] == "bench"
    assert set(doc["summary"]) == FOUR | {"robocl_mppi_bf16"}, doc.get("notes")
    for name in FOUR:
        entry = doc["summary"][name]
        assert 0 < entry["plan_ms_median"] <= entry["plan_ms_p95"]
        assert name in doc["peers"] and doc["peers"][name]["planner"]
    for row in doc["runs"]:
        assert row["calls"] == 15
        assert 0 < row["plan_ms_median"] <= row["plan_ms_p95"]
    ours = doc["summary"]["robocl_mppi"]
    assert 0 < ours["frac_fp32_peak"] <= 1 and ours["gflops"] > 0
    bf16 = doc["summary"]["robocl_mppi_bf16"]  # the same plan (same FLOPs) with bf16 matmuls
    assert bf16["flops_per_plan"] == ours["flops_per_plan"] and 0 < bf16["frac_bf16_peak"] <= 1
    assert doc["peers"]["robocl_mppi_bf16"]["planner"].endswith("planner.precision=bf16")
    # 200 particles x 5 steps through 5 members of 3x200 SiLU layers (5 inputs, 6 target means)
    assert ours["flops_per_plan"] == 2 * 5 * 200 * (5 * 200 + 2 * 200 * 200 + 200 * 6)
    roofline = doc["roofline"]
    assert roofline["threads"] == 1 and 0 < roofline["fp32_peak_gflops"] and 0 < roofline["bf16_peak_gflops"]
    assert doc["peers"]["mbrl_mppi"]["packages"]["mbrl"] == "0.2.0"
    for peer in FOUR - {"robocl_mppi"}:
        assert doc["ratios"][f"{peer}_over_robocl_mppi_median"] > 0
    assert "matmul peak" in proc.stdout and "of fp32 peak" in proc.stdout


def test_plan_flops_match_a_hand_count():
    """UGV ensemble 5 x 3 x 200: inputs 3 features + 2 actions, planning reads the 6 target means of the head."""
    model = GaussianEnsemble(PlanarBodyCodec(), ensemble_size=5, hidden_size=200, hidden_layers=3)
    shapes = ensemble_layer_shapes(model)
    assert shapes == [(5, 200), (200, 200), (200, 200), (200, 6)]
    per_row = 5 * 200 + 200 * 200 + 200 * 200 + 200 * 6  # 82,200 multiply-adds per particle per step
    assert mlp_plan_flops(shapes, 1000, 5, 1, 5) == 2 * 1000 * 5 * per_row == 822_000_000
    assert mlp_plan_flops(shapes, 1000, 50, 3, 5) == 3 * 10 * 822_000_000
    # 1001 particles over 5 members: each member runs ceil(1001 / 5) = 201 rows (the step pads)
    assert mlp_plan_flops(shapes, 1001, 5, 1, 5) == 2 * 1005 * 5 * per_row
    assert mlp_plan_flops([(3, 4)], 7, 1, 1, 1) == 2 * 7 * 12
    with pytest.raises(ValueError):
        mlp_plan_flops(shapes, 0, 5)
    with pytest.raises(ValueError, match="not a GaussianEnsemble"):
        ensemble_layer_shapes(torch.nn.Linear(2, 2))


def test_plan_flops_match_what_torch_counts():
    """The count is what one model step really multiplies (torch's own FLOP counter, padding included)."""
    codec = PlanarBodyCodec()
    model = GaussianEnsemble(codec, ensemble_size=4, hidden_size=32, hidden_layers=2).eval()
    for population in (64, 66):
        states, actions = torch.randn(population, codec.state_dim), torch.randn(population, codec.action_dim)
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            model.step(states, actions)
        assert counter.get_total_flops() == mlp_plan_flops(ensemble_layer_shapes(model), population, 1, 1, 4)


@pytest.mark.usefixtures("one_torch_thread")
def test_matmul_peak_is_a_rate():
    peak = matmul_peak_gflops(torch.float32, size=64, seconds=0.0)
    assert math.isfinite(peak) and peak > 0


@pytest.mark.usefixtures("one_torch_thread")  # as runtime.threads=1 does in the command: a loaded machine slows
@pytest.mark.parametrize("missing", [("mbrl",), ("mbrl", "pytorch_mppi")])  # 2-thread matmuls far more than plans
def test_a_missing_peer_is_a_note_not_a_crash(monkeypatch, missing):
    from robocl.cli.app import compose
    from robocl.eval.progress import NullProgress
    from robocl.experiments import bench_planner

    for name in missing:  # `import mbrl.models` fails as if the package were not installed
        for module in (name, f"{name}.models", f"{name}.planning"):
            monkeypatch.setitem(sys.modules, module, None)
    cfg, _ = compose([*QUICK, "bench.repeats=3", "bench.warmup=1", "planner.population=50"], "bench")
    out = bench_planner.run(cfg, NullProgress())
    names = {row["method"] for row in out["runs"]}
    expected = {"robocl_mppi", "robocl_mppi_bf16"} | ({"pytorch_mppi_robocl_model"} if "pytorch_mppi" not in missing
                                                        else set())
    assert names == expected
    notes = " ".join(out["notes"])
    assert "mbrl_mppi" in notes and "pip install --no-deps mbrl==0.2.0" in notes
    assert ("pip install pytorch-mppi" in notes) == ("pytorch_mppi" in missing)
    assert 0 < next(r for r in out["runs"] if r["method"] == "robocl_mppi")["frac_fp32_peak"] <= 1


def test_roofline_sweep_writes_points_and_a_plot(tmp_path):
    run_dir = tmp_path / "sweep"
    proc = bench(run_dir, "bench.repeats=3", "bench.warmup=1", "planner.population=20",
                 "bench.populations=[10,20]", "bench.horizons=[2,3]", "bench.sweep_seconds=0")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((run_dir / "results.json").read_text())
    validate_results(doc)
    points = {(p["population"], p["horizon"]): p for p in doc["roofline"]["sweep"]}
    assert set(points) == {(10, 2), (20, 2), (10, 3), (20, 3)}
    assert all(p["calls"] == 3 and p["gflops"] > 0 and p["frac_fp32_peak"] > 0 for p in points.values())
    assert points[(20, 3)]["flops_per_plan"] == 2 * 3 * 20 * (5 * 200 + 2 * 200 * 200 + 200 * 6)
    png = run_dir / "roofline.png"
    assert doc["files"] == ["roofline.png"] and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(doc["summary"]) == FOUR | {"robocl_mppi_bf16"}  # the sweep rows stay out of the candidates' summary


def test_planner_bench_rejects_a_bad_sweep(tmp_path):
    proc = bench(tmp_path / "bad", "bench.populations=[1,100]")
    assert proc.returncode == 2 and "bench.populations" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "bad").exists()


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


def test_fleet_bench_times_one_batched_call_against_separate_plans(tmp_path):
    run_dir = tmp_path / "fleet"
    proc = bench(run_dir, "bench.repeats=8", "bench.warmup=1", "planner.population=50", "bench.fleet=4")
    assert proc.returncode == 0, proc.stderr
    fleet = json.loads((run_dir / "results.json").read_text())["fleet"]
    assert fleet["robots"] == 4 and fleet["calls"] == 10
    assert fleet["batched_ms_median"] > 0 and fleet["separate_ms_median"] > 0
    ratio = fleet["separate_ms_median"] / fleet["batched_ms_median"]
    assert fleet["separate_over_batched_median"] == pytest.approx(ratio)
    assert "fleet of 4" in proc.stdout
    bad = bench(tmp_path / "bad", "bench.fleet=0")
    assert bad.returncode == 2 and "bench.fleet" in bad.stderr and not (tmp_path / "bad").exists()
