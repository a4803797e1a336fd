"""Continual-learning metrics against matrices computed by hand."""

from __future__ import annotations

import pytest

from robocl.eval import continual as cm

# performance (higher is better) on task j (columns) after training task i (rows)
R = [[0.9, 0.1, 0.2],
     [0.6, 0.8, 0.3],
     [0.5, 0.7, 0.9]]
E = [[1.0 - v for v in row] for row in R]  # the same results as errors (lower is better)
BASELINE = [0.0, 0.05, 0.1]


def test_average_accuracy_is_the_mean_of_the_last_row():
    assert cm.average_accuracy(R) == pytest.approx((0.5 + 0.7 + 0.9) / 3)
    assert cm.average_accuracy(E) == pytest.approx((0.5 + 0.3 + 0.1) / 3)


def test_forgetting_bwt_fwt_by_hand():
    # forgetting: task 0 best 0.9 -> 0.5 (0.4); task 1 best 0.8 -> 0.7 (0.1)
    assert cm.forgetting(R) == pytest.approx(0.25)
    # bwt: (0.5 - 0.9 + 0.7 - 0.8) / 2
    assert cm.backward_transfer(R) == pytest.approx(-0.25)
    # fwt: (R[0][1] - b1 + R[1][2] - b2) / 2 = (0.05 + 0.2) / 2
    assert cm.forward_transfer(R, BASELINE) == pytest.approx(0.125)


def test_error_matrices_keep_the_meaning_of_each_metric():
    assert cm.forgetting(E, higher_is_better=False) == pytest.approx(0.25)
    assert cm.backward_transfer(E, higher_is_better=False) == pytest.approx(-0.25)
    assert cm.forward_transfer(E, [1 - b for b in BASELINE], higher_is_better=False) == pytest.approx(0.125)


def test_forgetting_uses_the_best_row_after_learning_not_only_the_diagonal():
    r = [[0.6, 0.0, 0.0],
         [0.9, 0.8, 0.0],
         [0.5, 0.8, 0.7]]
    assert cm.forgetting(r) == pytest.approx((0.4 + 0.0) / 2)  # task 0 peaked after task 1
    assert cm.backward_transfer(r) == pytest.approx((-0.1 + 0.0) / 2)  # bwt compares with the diagonal


def test_single_task_has_no_forgetting_and_bad_shapes_are_refused():
    assert cm.forgetting([[0.5]]) is None
    assert cm.backward_transfer([[0.5]]) is None
    with pytest.raises(ValueError):
        cm.average_accuracy([[0.1, 0.2]])


def _curve(flip: bool = False) -> cm.ContinualCurve:
    values = [[0.5, 0.0, 0.0],
              [0.9, 0.1, 0.0],   # end of task 0
              [0.4, 0.5, 0.1],   # the stability gap: task 0 dips right after the switch
              [0.8, 0.9, 0.2],   # end of task 1
              [0.7, 0.3, 0.6],
              [0.75, 0.8, 0.95]]  # end of task 2
    c = cm.ContinualCurve(task_ends=[10, 20, 30])
    for it, v in zip([5, 10, 15, 20, 25, 30], values):
        c.add(it, [1 - x for x in v] if flip else v)
    return c


def test_min_acc_and_wc_acc_by_hand():
    c = _curve()
    # task 0: worst in (10, 30] = 0.4; task 1: worst in (20, 30] = 0.3
    assert cm.min_accuracy(c) == pytest.approx(0.35)
    assert cm.worst_case_accuracy(c) == pytest.approx(0.95 / 3 + 2 / 3 * 0.35)
    # after task 1 only: task 0's worst in (10, 20] is 0.4; WC = 0.9/2 + 0.4/2
    assert cm.min_accuracy(c, k=1) == pytest.approx(0.4)
    assert cm.worst_case_accuracy(c, k=1) == pytest.approx(0.65)
    assert cm.min_accuracy(c, k=0) is None
    assert cm.worst_case_accuracy(c, k=0) == pytest.approx(0.9)


def test_stability_gap_on_errors_takes_the_worst_error():
    c = _curve(flip=True)
    assert cm.min_accuracy(c, higher_is_better=False) == pytest.approx(0.65)
    assert cm.worst_case_accuracy(c, higher_is_better=False) == pytest.approx(0.05 / 3 + 2 / 3 * 0.65)


def test_summary_names_and_reports(tmp_path):
    out = cm.summarize_matrix(R, baseline=BASELINE, curve=_curve(), prefix="dyn_")
    assert set(out) == {"dyn_avg_acc", "dyn_forgetting", "dyn_bwt", "dyn_fwt", "dyn_min_acc", "dyn_wc_acc"}
    table = cm.markdown_matrix(R, ["a", "b", "c"], "R")
    assert "| a | 0.900 | 0.100 | 0.200 |" in table
    summary = cm.markdown_summary({"x": {"avg_acc": 0.7, "forgetting": None}}, ["avg_acc", "forgetting"])
    assert "| x | 0.7 | — |" in summary
    cm.plot_heatmaps({"x": R, "y": E}, ["a", "b", "c"], tmp_path / "h.png", "t")
    cm.plot_curves({"x": _curve()}, ["a", "b", "c"], tmp_path / "c.png", "acc")
    assert (tmp_path / "h.png").stat().st_size > 1000 and (tmp_path / "c.png").stat().st_size > 1000
