"""Paired, object-clustered comparison of two methods (robocl.eval.paired) and the drag ablation report."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from robocl.eval.paired import paired_difference, paired_success
from robocl.experiments.cabinet_drag import ablation, open_against_heuristic, write_ablation


def test_paired_difference_by_hand():
    """Two objects, four and two items: the difference is the mean over objects (not items); with
    two objects the bootstrap means are 0.5, 1.0 or 1.5, so the interval is [0.5, 1.5]; NaN items drop."""
    a = np.array([1, 1, 1, 1, 2, 2, 7.0])
    b = a + np.array([0.5, 0.5, 0.5, 0.5, 1.5, 1.5, np.nan])
    d = paired_difference(a, b, np.array([0, 0, 0, 0, 1, 1, 1]))
    assert d.diff == pytest.approx(1.0) and d.objects == 2
    assert (d.low, d.high) == (pytest.approx(0.5), pytest.approx(1.5))
    assert d.mean_a == pytest.approx(8 / 6) and d.mean_b == pytest.approx(8 / 6 + 5 / 6)
    assert d.verdict(higher_is_better=True) == "better" and d.verdict(higher_is_better=False) == "worse"
    same = paired_difference(a, a + 0.25, np.arange(7))  # every object differs by the same amount
    assert (same.low, same.high) == (0.25, 0.25) and same.verdict(False) == "worse"
    single = paired_difference(a[:4], b[:4], np.zeros(4))  # one object: no interval
    assert math.isnan(single.low) and single.verdict(True) == "no measurable difference"


def test_paired_difference_separates_noise_from_a_shift():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(40), 8)
    a = rng.normal(size=320)
    noise = paired_difference(a, a + rng.normal(0, 1, 320), groups)
    assert noise.low < 0 < noise.high and noise.verdict(True) == "no measurable difference"
    shifted = paired_difference(a, a + 0.5 + rng.normal(0, 1, 320), groups)
    assert 0 < shifted.low < 0.5 < shifted.high


def test_drag_ablation_report(tmp_path):
    """drag_global worse on part_iou by 0.1 on every drag, equal elsewhere: only that row says 'worse'."""
    torch.manual_seed(0)
    n = 64
    base = {"epe": torch.rand(n) * 5, "part_iou": torch.rand(n), "axis_err_deg": torch.rand(n) * 10,
            "joint_type_ok": (torch.rand(n) > 0.3).float(), "object": torch.arange(n) // 8}
    glob = dict(base, part_iou=base["part_iou"] - 0.1)
    scores = {("drag_ms", 0, "test_instance"): base, ("drag_global", 0, "test_instance"): glob}
    result = ablation(scores, [0], ["test_instance"])
    assert result["instance/part_iou"]["verdict"] == "worse"
    assert result["instance/part_iou"]["diff"] == pytest.approx(-0.1)
    assert {result[f"instance/{m}"]["verdict"] for m in ("epe", "axis_err_deg", "joint_type_ok")} == {
        "no measurable difference"}
    notes = write_ablation(result, [0], tmp_path / "ablation.md")
    assert len(notes) == 1 and "part_iou worse" in notes[0]
    assert "| instance | part_iou |" in (tmp_path / "ablation.md").read_text()


def test_paired_success_is_the_exact_mcnemar_test():
    """Only discordant episodes count: 3 solved by b only, 1 by a only gives the two-sided
    binomial p = 2 * P(X <= 1 | n=4, 1/2) = 2 * 5/16 = 0.625 (by hand); 10 to 0 is significant."""
    a = np.array([1, 1, 1, 0, 0, 0, 1, 0, 1, 1], dtype=bool)
    b = np.array([1, 1, 0, 1, 1, 1, 1, 0, 1, 1], dtype=bool)
    test = paired_success(a, b)
    assert (test.episodes, test.a_only, test.b_only) == (10, 1, 3)
    assert test.p_value == pytest.approx(0.625)
    assert test.verdict() == "no significant difference"
    lopsided = paired_success(np.zeros(12, bool), np.r_[np.ones(10, bool), np.zeros(2, bool)])
    assert lopsided.p_value == pytest.approx(2 / 2**10) and lopsided.verdict() == "better"
    assert paired_success(np.ones(5, bool), np.ones(5, bool)).p_value == 1.0
    with pytest.raises(ValueError, match="differ in number"):
        paired_success(np.ones(3, bool), np.ones(4, bool))


def test_open_against_heuristic_pools_seeds_episode_by_episode():
    """drag_ms opens 2 episodes the heuristic does not (one per seed) and loses none; drag_global
    without a heuristic run on seed 1 is left out rather than compared on fewer episodes."""
    opened = {("nearest_part", 0): [True, False, True], ("nearest_part", 1): [False, True],
              ("drag_ms", 0): [True, True, True], ("drag_ms", 1): [True, True],
              ("drag_global", 0): [True, True, False]}
    out = open_against_heuristic(opened, seeds=[0, 1])
    assert set(out) == {"drag_ms"}
    d = out["drag_ms"]
    assert (d["episodes"], d["b_only"], d["a_only"]) == (5, 2, 0)
    assert d["p_value"] == pytest.approx(0.5) and d["verdict"] == "no significant difference"
