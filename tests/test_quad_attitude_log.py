"""The attitude-mode quadrotor log generator (robocl/offline/quad_attitude_log.py): real MuJoCo flights of
10-20 s, read back as CSV, and through robocl's own CSV reader with the shipped robot spec's columns."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from robocl.offline.quad_attitude_log import COMMAND_COLUMNS, HEADER, STATE_COLUMNS, fly, main, write_csv
from robocl.offline.readers import Episode, Mapping, align, open_source, transitions
from robocl.robots.spec import spec_from_config

SPEC = Path(__file__).resolve().parents[1] / "configs" / "robot" / "quad_attitude.yaml"


def read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def floats(rows: list[dict[str, str]], cols) -> np.ndarray:
    return np.array([[float(r[c]) for c in cols] for r in rows])


def robocl_transitions(path: Path) -> list[tuple]:
    """The CSV as robocl-eval reads it with the robot spec's default columns."""
    spec = spec_from_config(OmegaConf.load(SPEC))
    mapping = Mapping(period=spec.dt, state_columns=list(spec.state), command_columns=list(spec.command),
                      layout="vector", angle_dims=spec.angle_dims)
    return list(transitions(align(open_source(Episode(path.stem, path, "csv"), mapping).events(), mapping)))


def test_log_columns_quaternions_wind_switch_and_split(tmp_path, capsys):
    full, calm, wind = tmp_path / "quad.csv", tmp_path / "calm.csv", tmp_path / "wind.csv"
    code = main(["--out", str(full), "--out-calm", str(calm), "--out-wind", str(wind), "--minutes", "0.3",
                 "--wind-at-min", "0.15", "--wind", "3,0,0", "--seed", "2", "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "crashes: 0" in out and "wind(3,0,0) from row 225" in out
    header, rows = read(full)
    assert header == list(HEADER) == ["t", *STATE_COLUMNS, *COMMAND_COLUMNS, "regime"]
    assert len(STATE_COLUMNS) == 13 and len(COMMAND_COLUMNS) == 4
    assert len(rows) == 18 * 25 + 1  # 18 s at 25 Hz, plus the last state
    t = floats(rows, ["t"])[:, 0]
    assert np.allclose(np.diff(t), 0.04, atol=1e-9) and t[0] == 0.0
    states = floats(rows, STATE_COLUMNS)
    assert np.allclose(np.linalg.norm(states[:, 6:10], axis=1), 1.0, atol=1e-6)
    assert states[:, 2].min() > 0.3  # flying, not on the ground
    # the wind starts where asked: the first row flown in it is t = 9.0 s
    regimes = [r["regime"] for r in rows]
    first = regimes.index("wind(3,0,0)")
    assert t[first] == pytest.approx(9.0) and set(regimes[:first]) == {"calm"}
    assert set(regimes[first:]) == {"wind(3,0,0)"}
    # commands inside the robot spec's action box; the last row holds the state only
    spec = spec_from_config(OmegaConf.load(SPEC))
    assert spec.state == STATE_COLUMNS and spec.command == COMMAND_COLUMNS and spec.simulator is None
    cmds = floats(rows[:-1], COMMAND_COLUMNS)
    assert np.all(cmds >= np.array(spec.action_low)) and np.all(cmds <= np.array(spec.action_high))
    assert cmds.std(0).min() > 0.01  # exploration noise: every channel varies
    assert all(rows[-1][c] == "" for c in COMMAND_COLUMNS)
    # the split: calm = rows before the switch (+ the switch row's state, to keep its last transition),
    # wind = from the switch on
    _, calm_rows = read(calm)
    _, wind_rows = read(wind)
    assert len(calm_rows) == first + 1 and len(wind_rows) == len(rows) - first
    assert {r["regime"] for r in calm_rows[:-1]} == {"calm"} and calm_rows[-1]["thrust_cmd"] == ""
    assert calm_rows[-1]["x"] == rows[first]["x"] and wind_rows[0] == rows[first]
    # robocl reads it with the spec's columns: every step is a transition, one segment
    assert len(robocl_transitions(full)) == len(rows) - 1
    assert len(robocl_transitions(calm)) == first and len(robocl_transitions(wind)) == len(rows) - first - 1


def test_controller_tracks_a_slow_figure_eight_in_and_out_of_the_wind():
    log = fly(0.35, wind_at_min=0.2, wind=(3.0, 0.0, 0.0), seed=0, slow=True)
    err = np.asarray(log.position_errors)
    assert log.crashes == 0 and len(err) == 21 * 25
    assert err.max() < 0.5 and np.sqrt(np.mean(err**2)) < 0.25  # measured: max 0.29-0.42, rms 0.14
    assert np.sqrt(np.mean(err[log.wind_row + 100:] ** 2)) < 0.25  # the integrator holds it in the wind
    # it flew the figure eight (about +-0.8 m by +-0.4 m), not a hover
    xy = np.asarray(log.states)[:, :2]
    assert np.ptp(xy[:, 0]) > 1.2 and np.ptp(xy[:, 1]) > 0.6


def test_a_crash_is_counted_and_breaks_the_stream(tmp_path):
    log = fly(0.3, seed=1, noise=20.0)  # absurd exploration noise flips the vehicle
    assert log.crashes >= 1
    t = np.asarray(log.times_ns) / 1e9
    gaps = np.diff(t)
    assert (gaps > 0.5).sum() == log.crashes and gaps.max() >= 5.0  # > data.max_state_gap (0.5 s)
    assert t[-1] == pytest.approx(18.0)  # the log goes on to the end
    path = tmp_path / "crashy.csv"
    write_csv(path, log)
    segments = {item[0] for item in robocl_transitions(path)}
    assert len(segments) >= 2  # readers break the segment at each crash


@pytest.mark.parametrize("args, fragment", [
    (["--minutes", "1"], "nothing to write"),
    (["--out", "a.csv", "--minutes", "0"], "--minutes"),
    (["--out", "a.csv", "--minutes", "1", "--wind", "3,0"], "WX,WY,WZ"),
    (["--out", "a.csv", "--minutes", "1", "--wind", "3,0,0"], "go together"),
    (["--out", "a.csv", "--minutes", "1", "--wind-at-min", "2", "--wind", "3,0,0"], "inside the log"),
    (["--out", "a.csv", "--minutes", "1", "--rate", "30"], "500 Hz"),
    (["--out-calm", "a.csv", "--minutes", "1"], "--wind-at-min"),
    (["--out", "a.csv", "--out-wind", "a.csv", "--minutes", "1", "--wind-at-min", "0.5", "--wind", "1,0,0"],
     "different files"),
])
def test_bad_arguments_are_one_line_exit_2(args, fragment, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(args)
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert exc.value.code == 2 and len(lines) == 1 and fragment in lines[0], err
    assert not (tmp_path / "a.csv").exists()
