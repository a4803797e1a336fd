"""The one regime-change detector (robocl.continual.changepoint): located changes worked out by hand,
no false change on an error that is high, noisy and autocorrelated but stationary, and lasting jumps
found within 10 steps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from robocl.continual.changepoint import ChangeDetector, detect_changes


def test_steps_are_located_exactly_and_a_flat_error_never_fires():
    e = np.r_[np.full(60, 0.1), np.full(60, 2.0), np.full(60, 0.1)]
    assert detect_changes(e, window=10, factor=3.0, warmup=20) == [60, 120]
    assert detect_changes(np.full(300, 0.5)) == []
    with pytest.raises(ValueError):
        ChangeDetector(window=20, warmup=10)


def test_online_alarm_comes_half_a_window_after_a_lasting_change_and_a_short_excursion_is_ignored():
    d = ChangeDetector(window=18, factor=4.0, warmup=50)
    e = np.r_[np.full(100, 0.1), np.full(8, 5.0), np.full(100, 0.1), np.full(60, 5.0)]  # a turn, then a change
    fired = [i for i, v in enumerate(e) if d.update(float(v))]
    assert fired == [208 + 8]  # half of the 18-step window from the new regime moves its median


DATA = Path(__file__).parent / "data" / "foreign_ugv_sim_model_errors.npz"


def recorded_errors() -> list[np.ndarray]:
    """A recorded log's per-step errors: the simulator-pretrained model's normalized one-step error on
    14.2 minutes (10 episodes) of a foreign UGV's driving, no regime change (6 kg payload, wheels x1.25,
    friction 0.4; `robocl-run ... 'seeds=[0,1,2,3,4]' record=...`, README). The defaults were chosen on it."""
    with np.load(DATA) as d:
        return [d[k].astype(float) for k in d.files]


@pytest.mark.parametrize("jump", [5.0, 10.0, 0.1])
def test_recorded_stationary_log_gives_no_false_change_and_jumps_are_found_within_10_steps(jump):
    episodes = recorded_errors()
    minutes = sum(len(e) for e in episodes) / 300  # 5 Hz
    false = sum(len(detect_changes(e)) for e in episodes)
    assert minutes > 14 and false / minutes * 10 <= 1.0, false  # at most one false change per 10 minutes
    for e in episodes:
        e = e.copy()
        e[200:] *= jump  # a lasting change of the robot's response, 40 s into the drive
        d = ChangeDetector()
        fired = [i for i, v in enumerate(e) if d.update(float(v)) and i >= 200]
        assert fired and fired[0] - 200 <= 10, fired[:3]


def test_rise_only_and_floor_make_the_closed_loop_switch_rule():
    """window 1, warmup = a cooldown, floor = a threshold: AFM's "error above the threshold" switch, against
    the error's own level since the last switch (hand-worked: level = median of the 3 warmup errors)."""
    d = ChangeDetector(window=1, factor=4.0, warmup=3, rise_only=True, floor=1.0)
    assert [d.update(v) for v in (0.1, 0.1, 0.1)] == [False] * 3  # warmup: level 0.1
    assert d.update(0.9) is False  # x9 its level but under the floor
    assert d.update(1.2) is True  # x12 and above the floor
    assert [d.update(v) for v in (2.0, 2.0, 2.0)] == [False] * 3  # an unreachable regime: level 2.0
    assert d.update(3.0) is False  # above the floor, but only x1.5 its level: not declared again
    # a fall is no change with rise_only, but the level is learned again (from the 3 errors after it)
    assert [d.update(v) for v in (0.01, 0.01, 0.01, 0.01)] == [False] * 4
    assert d.update(0.5) is False  # x50 the new level, under the floor
    assert d.update(1.5) is True  # measured against the old level (2.0) it would not have fired
    with pytest.raises(ValueError):
        ChangeDetector(floor=-1.0)
