"""`experiment=ugv_afm` end to end on a tiny budget, and its statistics worked out by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import COURSE, SMALL_UGV, cli

from robocl.cli.run import main as run_main
from robocl.eval.paired import mean_interval
from robocl.experiments.ugv_afm import acceptance, statistics_table


def _runs(method: str, successes: list[float]) -> list[dict]:
    return [{"method": method, "gains": f"(g{i % 2})", "course": "c", "seed": i // 2, "success_rate": s}
            for i, s in enumerate(successes)]


def test_statistics_pair_the_same_episodes_and_bootstrap_the_mean():
    frozen = [0.0, 0.5, 0.0, 0.5, 0.0, 0.5, 0.0, 0.5]
    afm = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5]
    stats = statistics_table(_runs("mppi", frozen) + _runs("mppi_afm", afm), ["mppi", "mppi_afm"])
    assert stats["success"]["mppi"]["mean"] == pytest.approx(0.25)
    assert stats["success"]["mppi_afm"]["items"] == 8
    low, high = stats["success"]["mppi"]["low"], stats["success"]["mppi"]["high"]
    assert 0.0 <= low < 0.25 < high <= 0.5  # a bootstrap interval of the mean of 0 / 0.5 flags
    (pair,) = stats["paired"]
    # per-episode differences: 1, .5, 1, .5, 1, .5, .5, 0 -> mean 0.625, and its interval stays above zero
    assert (pair["a"], pair["b"], pair["items"]) == ("mppi", "mppi_afm", 8)
    assert pair["diff"] == pytest.approx(0.625)
    assert 0.0 < pair["low"] < 0.625 < pair["high"] <= 1.0 and pair["verdict"] == "better"
    check = acceptance(_runs("mppi", frozen) + _runs("mppi_afm", afm))
    assert check["ratio"] == pytest.approx(0.875 / 0.25) and check["passed"]
    same = mean_interval(np.ones(5))
    assert (same.mean, same.low, same.high, same.n) == (1.0, 1.0, 1.0, 5)


def test_ugv_afm_runs_end_to_end_with_intervals(tmp_path, capsys):
    course = tmp_path / "loop.csv"
    course.write_text(COURSE)
    run_dir = tmp_path / "run"
    code, _, err = cli(run_main, [*SMALL_UGV, "experiment=ugv_afm", f"task.map=[{course}]", "seeds=[0,1]",
                                  "task.gains=[[-1,1],[1,-1]]", "methods=[mppi,mppi_afm]", "budget.max_steps=60",
                                  "planner.population=128", "refiner.data.regimes=60", "refiner.data.steps=30",
                                  "refiner.train.epochs=3", "refiner.hidden=64", "refiner.embed=32",
                                  f"hydra.run.dir={run_dir}"], capsys)
    assert code == 0, err
    doc = json.loads((run_dir / "results.json").read_text())
    assert len(doc["runs"]) == 8  # 2 methods x 2 gain pairs x 1 course x 2 seeds
    stats = doc["statistics"]
    for method in ("mppi", "mppi_afm"):
        s = stats["success"][method]
        assert s["items"] == 4 and s["low"] <= s["mean"] <= s["high"]
        assert s["mean"] == pytest.approx(np.mean([r["success_rate"] for r in doc["runs"] if r["method"] == method]))
    assert [(p["a"], p["b"], p["items"]) for p in stats["paired"]] == [("mppi", "mppi_afm", 4)]
    text = (run_dir / "per_gain.md").read_text()
    assert "95% bootstrap interval" in text and "mppi_afm − mppi" in text and "vs frozen mppi" in text
    assert "time to recover" in text and all("recovery_steps_c1" in r for r in doc["runs"])
    assert (run_dir / "success_by_gain.png").stat().st_size > 5_000


def test_recovery_steps_by_hand():
    from robocl.offline.metrics import label_changes
    from robocl.tasks.tracking import recovery_steps

    on = np.array([1, 1, 0, 0, 0, 1, 0, 1, 1, 1, 1, 0], dtype=bool)
    assert recovery_steps(on, 2, 3) == 5  # from step 2, the first 3-step on-course run starts at step 7
    assert recovery_steps(on, 0, 2) == 0  # it was on course at the change
    assert recovery_steps(on, 8, 4) is None  # steps 8..11: one off-course step at the end
    assert recovery_steps(on[:11], 8, 4, finished=True) == 0  # on course until the course was finished
    assert [c.index for c in label_changes(["nominal", "nominal", "g", "g", "nominal"])] == [2, 4]
