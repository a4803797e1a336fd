"""Paired, object-clustered comparison of two methods (robocl.eval.paired) and the drag ablation report."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from robocl.drag.experiment import ablation, write_ablation
from robocl.eval.paired import paired_difference


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
