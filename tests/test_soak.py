"""Issue 29 soak: one online-learning UGV controller over many laps of the real MuJoCo UGV (the environment
reset after each, the controller kept) through `robocl-run experiment=soak`: resident memory flat after
warm-up, plan time not degrading, every container it holds bounded, no autograd graph kept outside learning.
10,000 steps with a small planner and model by default; 100,000 at the default sizes under -m slow."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import SMALL_UGV, cli

from robocl.cli.run import main
from robocl.control import ControllerStats, Recent, RecentValues
from robocl.eval.results import validate_results


def soak(tmp_path, capsys, args: list[str]) -> dict:
    code, _, err = cli(main, ["experiment=soak", "runtime.progress=false", *args,
                              f"hydra.run.dir={tmp_path / 'soak'}"], capsys)
    assert code == 0, err
    validate_results(json.loads((tmp_path / "soak" / "results.json").read_text()))
    assert (tmp_path / "soak" / "soak.png").stat().st_size > 0
    return json.loads((tmp_path / "soak" / "soak.json").read_text())


def check_soak(doc: dict, steps: int, window: int, rss_mb: float) -> None:
    summary, samples = doc["summary"], doc["samples"]
    rss, plan = summary["rss_mb"], summary["plan_ms_median"]
    print(f"soak {steps} steps: {summary['steps_per_s']:.1f} steps/s; rss MB start {rss['start']}, step "
          f"{rss['warmup_step']} {rss['after_warmup']}, end {rss['end']} (growth {rss['growth_after_warmup']}); "
          f"plan ms median first/last 1000 steps {plan['first']:.3f}/{plan['last']:.3f}; "
          f"containers {summary['containers']['end']}")
    assert summary["steps"] == steps and [s["step"] for s in samples] == list(range(0, steps + 1, 1000))
    assert summary["laps"]["laps"] >= 3 and summary["laps"]["finished"] >= 2  # episodes ended; one controller
    assert rss["warmup_step"] == 2000 and rss["growth_after_warmup"] < rss_mb, rss  # end - lowest since step 2000
    assert plan["last"] <= 1.5 * plan["first"] + 1.0, plan
    assert all(s["learn_ms_median"] is not None for s in samples[1:])  # it kept learning
    sizes = summary["containers"]
    assert sizes["end"] == sizes["mid"], sizes  # nothing grows after mid-run
    for name in ("plan_ms", "refine_ms", "learn_ms", "pred_sq_err"):  # kept windows, not every step
        assert sizes["end"][f"stats.{name}"] == window, sizes["end"]
    assert sizes["end"]["strategy.buffer"] == 64
    # live Python objects: only the soak's own samples (a few per sample) come after warm-up
    assert summary["gc_objects"]["end"] - summary["gc_objects"]["after_warmup"] < 10 * len(samples), summary
    assert summary["graph_tensors"] == []  # no model / planner tensor keeps an autograd graph


def test_soak_10k_steps(tmp_path, capsys):
    """10,000 steps (about a minute on one thread): a smaller planner and one learning step per transition."""
    doc = soak(tmp_path, capsys, [*SMALL_UGV, "soak.steps=10000", "planner.population=100",
                                  "continual.steps_per_transition=1"])
    check_soak(doc, 10_000, window=2000, rss_mb=20.0)


@pytest.mark.slow
@pytest.mark.timeout(4 * 3600)
def test_soak_100k_steps(tmp_path, capsys):
    """100,000 steps at the default sizes (ensemble 5x200, population 1000, 3 learning steps per transition)."""
    doc = soak(tmp_path, capsys, ["runtime.threads=1"])
    check_soak(doc, 100_000, window=2000, rss_mb=30.0)


def test_controller_stats_keep_a_window_and_count_everything():
    """The per-step series a controller keeps: the latest `window` values, but counts and the mean over all."""
    values = RecentValues(window=3)
    for v in range(10):
        values.append(float(v))
    assert list(values) == [7.0, 8.0, 9.0] and len(values) == 3 and values[-1] == 9.0 and values[-2:] == [8.0, 9.0]
    assert values.count == 10 and values.mean_all() == 4.5 and np.mean(values) == 8.0
    assert np.percentile(values, 50) == 8.0 and np.asarray(values).tolist() == [7.0, 8.0, 9.0]
    assert RecentValues().mean_all() is None and not Recent(2)
    stats = ControllerStats(window=None)  # every step (an episode runner's stats)
    for v in range(5000):
        stats.plan_ms.append(v)
    assert len(stats.plan_ms) == 5000 and stats.plan_ms.window is None
