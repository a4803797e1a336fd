"""`robocl-run experiment=cl_*`: the whole continual comparison end to end, small and real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from robocl.cli.app import run_app
from robocl.cli.run import run_experiment, validate_experiment
from robocl.eval.results import validate_results

TINY = [
    "cl.tasks=[{name:nominal,params:{}},{name:reverse,params:{gains:[-1.0,1.0]}}]",
    "cl.strategies=[finetune,hypercrl]",
    "seeds=[0]",
    "budget.max_steps=60",
    "+cl.train.epochs=3",
    "cl.data.episodes=2",
    "cl.data.steps=50",
    "cl.data.test_episodes=1",
    "cl.plan.rows=diag_last",
    "cl.plan.waypoints=2",
    "planner.population=100",
    "cl.timing.reps=5",
    "cl.eval_every=5",
    "dynamics.target.hidden_size=32",
    "runtime.progress=false",
]


def robocl_run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("robocl-run")
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=1800,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


def run_in_process(*args: str) -> int:
    """The same entry point as the console script, without paying the interpreter start-up."""
    return run_app("robocl-run", "", run_experiment, argv=list(args), validate=validate_experiment)


def test_cl_ugv_writes_the_comparison(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert run_in_process("experiment=cl_ugv", *TINY, f"hydra.run.dir={run_dir}") == 0, capsys.readouterr().err
    doc = json.loads((run_dir / "results.json").read_text())
    validate_results(doc)
    assert doc["experiment"] == "cl_ugv"
    assert {r["method"] for r in doc["runs"]} == {"finetune", "hypercrl"}
    for method in ("finetune", "hypercrl"):
        for key in ("avg_acc", "forgetting", "bwt", "fwt", "min_acc", "wc_acc", "dyn_mse_avg", "plan_success_old"):
            assert isinstance(doc["summary"][method][key], float), (method, key)
    detail = doc["continual"]["runs"]["hypercrl/s0"]
    assert len(detail["dyn_mse"]) == 2 and len(detail["curve_mse"]["task_ends"]) == 2
    assert detail["memory_floats"][1] - detail["memory_floats"][0] == 8  # one embedding
    timing = doc["planning_timing"]
    assert timing["hypernet_ms_median"] > 0 and timing["ratio_median"] > 0
    md = (run_dir / "continual.md").read_text()
    assert "| hypercrl |" in md and "Acceptance checks" in md
    for png in ("heatmap_dyn_mse.png", "heatmap_plan_success.png", "curves_dyn_mse.png"):
        assert (run_dir / png).stat().st_size > 5_000


@pytest.mark.parametrize("override, message", [
    ("cl.strategies=[finetune,nope]", "cl.strategies: 'nope' has no config"),
    ("planner=cem", "cl.plan.planner=mppi: planner=cem configures cem"),
    ("dynamics=ensemble", "need dynamics=hypernet"),
    ("cl.plan.rows=some", "cl.plan.rows='some'"),
    ("cl.tasks=[{name:a,params:{payload_kg:-3}}]", "cl.tasks: must be a list of at least 2"),
    ("cl.tasks=[{name:a,params:{}},{name:b,params:{payload_kg:-3}}]", "cl.tasks[1].params"),
    ("cl.target=boat", "cl.target='boat'"),
    ("planner.precision=bf16", "planner.precision=bf16: needs dynamics=ensemble"),  # cl runs plan on a hypernetwork
])
def test_bad_cl_configs_exit_2_with_one_line(tmp_path, capsys, override, message):
    code = run_in_process("experiment=cl_ugv", override, f"hydra.run.dir={tmp_path / 'r'}")
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()  # validated before anything is written


@pytest.mark.slow
@pytest.mark.timeout(3600)  # ~20 min on a free core: past the 600 s default (it timed out there)
def test_cl_ugv_acceptance(tmp_path):
    """The issue's acceptance on the UGV sequence (default config, 3 seeds: ~20 min on a free core)."""
    run_dir = tmp_path / "run"
    proc = robocl_run("experiment=cl_ugv", "runtime.progress=false", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    s = json.loads((run_dir / "results.json").read_text())["summary"]
    h, f, mt, cs = s["hypercrl"], s["finetune"], s["multitask"], s["coreset"]
    assert h["dyn_forgetting"] <= 0.2 * f["dyn_forgetting"]
    assert h["avg_acc"] >= 0.9 * mt["avg_acc"]
    assert h["plan_success_old"] >= cs["plan_success_old"] - 0.05
    assert h["memory_growth_per_task"] == 8


def _without_timing(doc: dict) -> tuple[list[dict], dict]:
    """Rows and matrices of a cl run without its wall-clock entries (those differ between any two runs)."""
    rows = [{k: v for k, v in r.items() if not k.endswith("_s")} for r in doc["runs"]]
    return rows, doc["continual"]["runs"]


def test_cl_strategies_fan_out_on_ray_and_resume_with_their_matrices(tmp_path, capsys):
    """Each (strategy, seed) is a unit: a local Ray instance with 2 workers gives the serial run's rows and
    accuracy matrices; a resumed run keeps the finished unit's matrices (units.json holds them)."""
    serial, on_ray = tmp_path / "serial", tmp_path / "ray"
    assert run_in_process("experiment=cl_ugv", *TINY, f"hydra.run.dir={serial}") == 0, capsys.readouterr().err
    assert run_in_process("experiment=cl_ugv", *TINY, "runtime.executor=ray", "runtime.workers=2",
                          f"hydra.run.dir={on_ray}") == 0, capsys.readouterr().err
    reference = json.loads((serial / "results.json").read_text())
    doc = json.loads((on_ray / "results.json").read_text())
    assert [r["method"] for r in doc["runs"]] == ["finetune", "hypercrl"]  # canonical order
    assert _without_timing(doc) == _without_timing(reference)
    assert len(doc["units"]["workers"]) == 2
    ledger = json.loads((on_ray / "units.json").read_text())
    del ledger["units"]["hypercrl|s0"]
    (on_ray / "units.json").write_text(json.dumps(ledger))
    assert run_in_process("experiment=cl_ugv", *TINY, "resume=true", f"hydra.run.dir={on_ray}") == 0
    assert "resume: 1 of 2 units already finished" in capsys.readouterr().err
    assert _without_timing(json.loads((on_ray / "results.json").read_text())) == _without_timing(reference)
    assert "| finetune |" in (on_ray / "continual.md").read_text()


def test_acceptance_lines_compare_the_issue_ratios_worked_out_by_hand():
    from robocl.experiments.continual_sequence import acceptance_lines

    summary = {"finetune": {"avg_acc": 0.50, "forgetting": 0.40, "dyn_forgetting": 1.0},
               "ewc": {"avg_acc": 0.60, "forgetting": 0.20}, "si": {"avg_acc": 0.55}, "l2": {"avg_acc": 0.70},
               "coreset": {"avg_acc": 0.72, "forgetting": 0.09}, "multitask": {"avg_acc": 0.75},
               "multitask_noid": {"avg_acc": 0.30}, "hypercrl": {"avg_acc": 0.78, "dyn_forgetting": 0.1}}
    text = "\n".join(acceptance_lines(summary, None))
    # multitask 0.75 - hypercrl 0.78 = -0.03 < -0.02; coreset 0.72 >= l2 0.70; 0.09 / 0.40 = 0.225 > 0.2
    assert "multitask avg_acc - best continual strategy's (hypercrl) = -0.030 (>= -0.02): FAIL" in text
    assert "coreset avg_acc 0.720 vs best of ewc/si/l2 (l2) 0.700 (>=): PASS" in text
    assert "coreset forgetting / finetune forgetting = 0.225 (<= 0.2): FAIL" in text
    assert "hypercrl forgetting / finetune forgetting = 0.100 (<= 0.2): PASS" in text
    # single keeps a model per task: a reference beside multitask, not a continual strategy it must match
    summary["single"] = {"avg_acc": 0.90}
    text = "\n".join(acceptance_lines(summary, None))
    assert "best continual strategy's (hypercrl) = -0.030" in text
    assert "multitask avg_acc - single's (a reference: one model per task) = -0.150 (reported): n/a" in text


def test_seed_intervals_and_paired_differences_worked_out_by_hand():
    from robocl.experiments.continual_sequence import seed_interval_lines

    # multitask 0.80, 0.90, 1.00 (sd 0.1); hypercrl 0.85, 0.85, 0.85: paired differences -0.05, 0.05, 0.15
    acc = {"multitask": [0.80, 0.90, 1.00], "hypercrl": [0.85, 0.85, 0.85], "single": [0.9, 0.9, 0.9]}
    runs = [{"method": m, "seed": s, "avg_acc": v[s]} for m, v in acc.items() for s in range(3)]
    text = "\n".join(seed_interval_lines(runs))
    half = 4.302653 * 0.1 / 3 ** 0.5  # t(0.975, 2) * sd / sqrt(n) = 0.248
    assert f"| multitask | 0.900 [{0.9 - half:.3f}, {0.9 + half:.3f}] |" in text
    assert "| hypercrl | 0.850 [0.850, 0.850] |" in text
    assert f"avg_acc multitask - hypercrl, paired over 3 seeds: +0.050 [{0.05 - half:+.3f}, {0.05 + half:+.3f}]" in text
    assert seed_interval_lines(runs[:1] + runs[3:4]) == []  # one seed: no interval to give
