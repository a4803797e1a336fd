"""Offline adaptation evaluation (issue 9): recording, bag/CSV readers, prequential replay, metrics, errors.

Real code throughout: a real MuJoCo UGV run recorded with `robocl-run record=`, bags written with
rosbags (ROS 2 MCAP, ROS 1), `robocl-eval` run in-process with a small pretrained ensemble.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import robocl_envs  # noqa: F401
from conftest import SMALL_UGV, cli
from rosbags.highlevel import AnyReader

from robocl.eval.results import validate_results
from robocl.offline import metrics as M
from robocl.offline.readers import Mapping, align, transitions
from robocl.offline.recording import BagRecorder, write_episode
from robocl.sim.data import smooth_random_actions

SMALL = SMALL_UGV  # the small real ensemble every own-robot and offline test shares (conftest)


def robocl_eval(args: list[str], capsys) -> tuple[int, str, str]:
    from robocl.cli.eval import main

    return cli(main, [*SMALL, *args], capsys)


def results(run_dir: Path) -> dict:
    doc = json.loads((run_dir / "results.json").read_text())
    validate_results(doc)
    return doc


@pytest.fixture(scope="module")
def gain_log():
    """A real UGV log: 60 nominal steps, then 140 steps with the (v, w) command gains (-1, 1), driving forward."""
    env = gym.make("robocl/UGV-v0").unwrapped
    rng = np.random.default_rng(3)
    low, high = env.action_space.low.astype(float), env.action_space.high.astype(float)
    obs, _ = env.reset(seed=5)
    states, actions, regimes = [obs], [], []
    for step, action in enumerate(smooth_random_actions(rng, low, high, 200, hold_prob=0.3)):
        action[0] = np.clip(abs(action[0]), 0.3, 1.0)  # driving forward: a reversed command always shows
        gains = (1.0, 1.0) if step < 60 else (-1.0, 1.0)
        env.set_gains(gains)
        obs, *_ = env.step(action.astype(np.float32))
        states.append(obs)
        actions.append(action)
        regimes.append("nominal" if step < 60 else "gains(-1,1)")
    return np.asarray(states, float), np.asarray(actions, float), regimes


@pytest.fixture(scope="module")
def gain_bags(gain_log, tmp_path_factory):
    root = tmp_path_factory.mktemp("bags")
    states, actions, regimes = gain_log
    t0 = 1_764_000_000_123_456_789  # an epoch-sized stamp with nanoseconds: exact times matter
    write_episode(root / "ros2", states, actions, regimes, 0.2, {"method": "test"}, t0_ns=t0)
    write_episode(root / "log.bag", states, actions, regimes, 0.2, t0_ns=t0, fmt="ros1")
    return root


# ---- metric functions, hand-checked ----------------------------------------------------------------
def test_time_to_adapt_on_a_constructed_series():
    # pre-change level 1.0 (20 steps); after the change at 20: 10, 8, 4, 1.1, 1.0, 1.0, ...
    e = np.array([1.0] * 20 + [10, 8, 4, 1.1, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    # smooth=1: first post-change step with error <= 1.2 is j = 3 (1.1)
    assert M.time_to_adapt(e, 20, smooth=1) == (3, 1.0)
    # smooth=2 (trailing mean from the change on): 10, 9, 6, 2.55, 1.05 -> j = 4
    assert M.time_to_adapt(e, 20, smooth=2) == (4, 1.0)
    # a tolerance of 10% excludes 1.1 at j = 3 with smooth=1 -> j = 4
    assert M.time_to_adapt(e, 20, smooth=1, tolerance=0.1) == (4, 1.0)
    # never adapted before the next change (end=23)
    assert M.time_to_adapt(e, 20, end=23, smooth=1) == (None, 1.0)
    # the pre-change level is the mean over pre_window steps
    e2 = np.array([2.0] * 10 + [1.0] * 10 + [2.0, 1.7])
    assert M.time_to_adapt(e2, 20, pre_window=20, smooth=1) == (1, 1.5)  # 1.7 <= 1.2 * 1.5; 2.0 is not
    assert M.time_to_adapt(e2, 20, pre_window=10, smooth=1) == (None, 1.0)
    assert M.time_to_adapt(e2, 20, pre_window=20, smooth=1, start=10) == (None, 1.0)  # not before the last change
    # hold: back in the band for 3 consecutive steps; a single calm step (j = 1) does not count
    e3 = np.array([1.0] * 20 + [5.0, 1.0, 5.0, 5.0, 1.0, 1.1, 1.0, 1.0])
    assert M.time_to_adapt(e3, 20, smooth=1, hold=1) == (1, 1.0)
    assert M.time_to_adapt(e3, 20, smooth=1, hold=3) == (4, 1.0)
    assert M.time_to_adapt(e3, 20, smooth=1, hold=10) == (4, 1.0)  # in band until the segment ends


def test_changes_forgetting_and_trailing_mean():
    labels = ["a", "a", None, "b", "b", "a"]
    assert [(c.index, c.before, c.after) for c in M.label_changes(labels)] == [(3, "a", "b"), (5, "b", "a")]
    assert np.allclose(M.trailing_mean(np.array([1.0, 3.0, 5.0, 7.0]), 2), [1.0, 2.0, 4.0, 6.0])
    assert M.forgetting({"a": 0.5, "b": 0.3}, {"a": 0.2, "b": 0.1}, last_regime="b") == pytest.approx(0.3)
    assert M.forgetting({"b": 0.3}, {"b": 0.1}, last_regime="b") is None


def test_alignment_interpolates_states_and_holds_commands():
    ms = 1_000_000
    events = []
    for i in range(11):  # 50 Hz odometry over 0.2 s; yaw crosses +-pi
        yaw = np.pi - 0.1 + 0.02 * i
        events.append((i * 20 * ms, "state", np.array([0.1 * i, 0, np.remainder(yaw + np.pi, 2 * np.pi) - np.pi,
                                                        1.0, 0, 0.5])))
    events.insert(1, (0, "command", np.array([0.5, 0.1])))
    events.insert(6, (90 * ms, "command", np.array([0.7, 0.2])))
    events.insert(2, (0, "regime", "nominal"))
    events.sort(key=lambda e: e[0])
    ticks = list(align(iter(events), Mapping(period=0.1)))
    assert [t.t for t in ticks] == [0, 100 * ms, 200 * ms]
    assert np.allclose(ticks[1].state[:2], [0.5, 0.0])
    # yaw at 0.1 s: pi - 0.1 + 0.1 = pi (wrapped), interpolated on the circle, not through 0
    assert abs(abs(ticks[1].state[2]) - np.pi) < 1e-9
    assert np.allclose(ticks[0].command, [0.5, 0.1]) and np.allclose(ticks[1].command, [0.7, 0.2])
    assert ticks[2].regime == "nominal"
    # a hole in the odometry wider than max_state_gap breaks the stream: no transition spans it
    holed = [e for e in events if not (e[1] == "state" and 20 * ms <= e[0] <= 180 * ms)]
    trans = list(transitions(align(iter(holed), Mapping(period=0.1, max_state_gap=0.1))))
    assert trans == []


# ---- end to end ---------------------------------------------------------------------------------------
def test_recorded_ugv_run_evaluates_and_matches_its_csv_export(tmp_path, capsys):
    """robocl-run record= on a real MuJoCo run with two gain interventions; eval of the bag == eval of its CSV."""
    from robocl.cli.run import main as run_main

    course = tmp_path / "short.csv"
    course.write_text("x,y\n2.0,0.0\n4.0,1.0\n5.0,3.0\n6.0,5.0\n")
    rec = tmp_path / "rec"
    code, out, err = cli(run_main, [*SMALL, "planner.population=200", f"task.map={course}", "seeds=[0]",
                                    "methods=[mppi]", "budget.max_steps=70", "task.gains=[[2,2],[-1,1]]",
                                    f"record={rec}", f"hydra.run.dir={tmp_path / 'run'}"], capsys)
    assert code == 0, err
    bag = rec / "mppi_short_s0"
    assert (bag / "metadata.yaml").exists() and list(bag.glob("*.mcap"))
    steps = results(tmp_path / "run")["runs"][0]["steps"]
    with AnyReader([bag]) as reader:
        topics = {k: (v.msgtype, v.msgcount) for k, v in reader.topics.items()}
        labels = [reader.deserialize(raw, c.msgtype).data for c, _, raw in reader.messages()
                  if c.topic == "/robocl/regime"]
    assert topics["/odom"] == ("nav_msgs/msg/Odometry", steps + 1)
    assert topics["/cmd_vel"] == ("geometry_msgs/msg/TwistStamped", steps)
    assert topics["/robocl/episode"][1] == 1
    assert labels[:2] == ["nominal", "gains(2,2)"]
    # a recording never overwrites: the same record= again is a usage error before any work
    code, _, err = cli(run_main, [*SMALL, f"task.map={course}", "methods=[mppi]", f"record={rec}"], capsys)
    assert code == 2 and "exists already" in err

    code, out, err = robocl_eval([f"data={bag}", "methods=[frozen,online]", f"hydra.run.dir={tmp_path / 'e1'}"],
                                 capsys)
    assert code == 0, err
    assert "| frozen |" in out and "time_to_adapt" in out
    doc = results(tmp_path / "e1")
    assert doc["command"] == "eval" and (tmp_path / "e1" / "errors.png").stat().st_size > 10_000
    assert (tmp_path / "e1" / "summary.md").exists()
    csv_path = tmp_path / "export.csv"
    code, out, err = robocl_eval([f"data={bag}", f"export={csv_path}", f"hydra.run.dir={tmp_path / 'x'}"], capsys)
    assert code == 0, err
    assert csv_path.read_text().count("\n") == steps + 2  # header + one row per tick
    code, out, err = robocl_eval([f"data={csv_path}", "methods=[frozen,online]", f"hydra.run.dir={tmp_path / 'e2'}"],
                                 capsys)
    assert code == 0, err
    a, b = results(tmp_path / "e1"), results(tmp_path / "e2")
    assert len(a["runs"]) == len(b["runs"]) == 2
    for ra, rb in zip(a["runs"], b["runs"]):
        assert ra["transitions"] == rb["transitions"] == steps
        assert ra["changes_total"] == rb["changes_total"] >= 2
        for key in ("dyn_mse", "kstep_mse", "forgetting_mse", "post_change_mse_c1", "post_change_mse_c2"):
            assert ra[key] == pytest.approx(rb[key], abs=1e-6, rel=0), key
        for ca, cb in zip(ra["changes"], rb["changes"]):
            assert ca["time_to_adapt_steps"] == cb["time_to_adapt_steps"]


def test_online_beats_frozen_after_a_gain_change_ros2_and_ros1(gain_bags, tmp_path, capsys):
    runs = {}
    for name in ("ros2", "log.bag"):
        run_dir = tmp_path / name
        code, out, err = robocl_eval([f"data={gain_bags / name}", "methods=[frozen,online]",
                                      f"hydra.run.dir={run_dir}"], capsys)
        assert code == 0, err
        runs[name] = {r["method"]: r for r in results(run_dir)["runs"]}
    frozen, online = runs["ros2"]["frozen"], runs["ros2"]["online"]
    assert frozen["changes_total"] == 1 and frozen["changes"][0]["index"] == 60
    # the frozen nominal model cannot follow a reversed forward command; the online one adapts
    assert online["post_change_mse_c1"] < 0.8 * frozen["post_change_mse_c1"]  # measured 0.5-0.66
    assert frozen["time_to_adapt_steps_c1"] is None  # never back near its nominal error
    assert {"pre_mse", "post_mse", "time_to_adapt_steps", "time_to_adapt_s"} <= set(online["changes"][0])
    assert online["transitions_per_s"] > 0 and frozen["transitions_per_s"] > online["transitions_per_s"]
    assert online["forgetting_mse"] is not None  # error on the nominal regime at the end
    for method in ("frozen", "online"):  # the ROS 1 bag holds the same data: the same numbers
        assert runs["log.bag"][method]["dyn_mse"] == pytest.approx(runs["ros2"][method]["dyn_mse"], abs=1e-6)
    # a method's numbers do not depend on the methods beside it (each has its own random stream)
    code, _, err = robocl_eval([f"data={gain_bags / 'ros2'}", "methods=[online]", f"hydra.run.dir={tmp_path / 'o'}"],
                               capsys)
    assert code == 0, err
    alone = results(tmp_path / "o")["runs"][0]
    assert alone["dyn_mse"] == pytest.approx(online["dyn_mse"], abs=1e-6)


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_bad_inputs_are_one_line_and_exit_2(gain_bags, gain_log, tmp_path, capsys):
    truncated = tmp_path / "truncated"
    shutil.copytree(gain_bags / "ros2", truncated)
    mcap = next(truncated.glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    no_state = tmp_path / "no_state"
    with BagRecorder(no_state, state_topic="/other/odom") as rec:
        rec.state(0, gain_log[0][0])
        rec.state(200_000_000, gain_log[0][1])
        rec.command(0, gain_log[1][0])
    text = tmp_path / "notes.bag"
    text.write_text("these are my notes, not a bag\n")
    truncated1 = tmp_path / "cut.bag"
    truncated1.write_bytes((gain_bags / "log.bag").read_bytes()[:3000])
    empty_csv = tmp_path / "empty.csv"
    empty_csv.write_text("")
    cases = [
        (truncated, "not a readable ROS 2 bag (truncated or damaged"),
        (truncated1, "not a readable ROS 1 bag (truncated or damaged"),
        (no_state, "no state topic '/odom'"),
        (text, "not a readable ROS 1 bag (not a bag file"),
        (empty_csv, "empty CSV"),
        (tmp_path / "missing.bag", "no such file"),
    ]
    for path, fragment in cases:
        run_dir = tmp_path / f"run_{path.name}"
        code, _, err = robocl_eval([f"data={path}", f"hydra.run.dir={run_dir}"], capsys)
        assert code == 2, (path, err)
        line = _one_error_line(err)
        assert line.startswith("robocl-eval: error: ") and fragment in line and str(path) in line, line
        assert not run_dir.exists()  # validated before the run directory is created
    # a topic of the wrong type, and an unknown method
    code, _, err = robocl_eval([f"data={gain_bags / 'ros2'}", "data.state_topic=/cmd_vel"], capsys)
    assert code == 2 and "expected nav_msgs/msg/Odometry" in _one_error_line(err)
    code, _, err = robocl_eval([f"data={gain_bags / 'ros2'}", "methods=[frozen,teleport]"], capsys)
    assert code == 2 and "teleport" in _one_error_line(err)


@pytest.mark.parametrize("fmt", ["mcap", "ros1"])
def test_fast_wire_decoders_match_rosbags(fmt, tmp_path):
    from robocl.offline import rosmsg
    from robocl.offline.readers import BagSource, Episode

    rng = np.random.default_rng(0)
    path = tmp_path / ("b.bag" if fmt == "ros1" else "b")
    write_episode(path, rng.normal(size=(6, 6)), rng.normal(size=(5, 2)), ["a"] * 5, 0.2,
                  t0_ns=1_700_000_000_123_456_789, fmt=fmt)
    source = BagSource(Episode("b", path, "ros1" if fmt == "ros1" else "ros2"), Mapping())
    checked = 0
    with AnyReader([path]) as reader:
        for conn, _, raw in reader.messages():
            decode = source._fast_decoder(conn)
            if conn.msgtype == rosmsg.STRING:
                assert decode is None
                continue
            assert decode is not None  # standard definitions take the fast path
            msg = reader.deserialize(raw, conn.msgtype)
            stamp, value = decode(raw)
            ref = rosmsg.odometry_to_state(msg) if conn.msgtype == rosmsg.ODOMETRY else rosmsg.twist_to_command(msg)
            assert stamp == rosmsg.header_ns(msg) and np.array_equal(value, ref)
            checked += 1
    assert checked == 11


def replay_labels(labels: list[str], label_tasks: dict[str, int] | None = None) -> list[tuple]:
    """The task calls a boundaries=labels DynamicsTrack makes over `labels` (a strategy knowing `label_tasks`,
    as hypercrl on a robocl-train hypernet does, or none)."""
    import torch

    from robocl.continual.base import ContinualStrategy
    from robocl.dynamics.ensemble import GaussianEnsemble
    from robocl.offline.evaluate import DynamicsTrack
    from robocl.offline.readers import Block
    from robocl.robots.codec import PlanarBodyCodec

    calls = []

    class Recording(ContinualStrategy):
        def begin_task(self, task_id):
            calls.append(("begin", task_id))
            self.task_id = task_id

        def end_task(self):
            calls.append(("end",))

        def observe(self, transition):
            calls.append(("observe",))

    model = GaussianEnsemble(PlanarBodyCodec(), ensemble_size=2, hidden_size=8, hidden_layers=1)
    strategy = Recording(model)
    if label_tasks is not None:
        strategy.label_tasks = label_tasks
    track = DynamicsTrack("x", model, strategy, torch.ones(6), kstep=2, boundaries=True)
    n = len(labels)
    block = Block(np.arange(n), np.zeros((n + 1, 6)), np.zeros((n, 2)), labels, n, 0, 0)
    track.process(block, torch.zeros(n + 1, 6), torch.zeros(n, 2))
    assert len(track.series()) == n
    return calls


def test_task_boundaries_follow_regime_labels():
    """boundaries=labels: end_task/begin_task at each label change; a recurring label gets its task id back."""
    calls = replay_labels(["nominal", "nominal", "gains(2,2)", "gains(2,2)", "nominal"])
    assert calls == [("observe",), ("observe",), ("end",), ("begin", 1), ("observe",), ("observe",),
                     ("end",), ("begin", 0), ("observe",)]


def test_track_keeps_trained_task_ids_for_known_labels():
    """A strategy that knows its labels (hypercrl on a robocl-train dynamics=hypernet model): a trained label
    keeps its trained task id, even as the log's first label; a new label gets the next free id."""
    calls = replay_labels(["reversed", "reversed", "half", "nominal"], {"nominal": 0, "reversed": 1})
    assert calls == [("begin", 1), ("observe",), ("observe",), ("end",), ("begin", 2), ("observe",), ("end",),
                     ("begin", 0), ("observe",)]
