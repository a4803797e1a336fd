"""robocl-eval fans out one unit per (episode, method): kill -9 of the driver then resume=true gives the
uninterrupted run's results, and runtime.executor=ray (a real local Ray instance) gives the serial ones.

Real code: UGV drives recorded from MuJoCo into ROS 2 bags, the small real ensemble, real subprocesses."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import robocl_envs  # noqa: F401
from conftest import SMALL_UGV, cli, sigkill_when

from robocl.cli.eval import main as eval_main
from robocl.offline.recording import write_episode
from robocl.sim.data import smooth_random_actions

METHODS = "methods=[frozen,online]"
TIMING = ("transitions_per_s", "eval_s")


def drive(seed: int, steps: int, change_at: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A UGV drive whose command gains turn to (-1, 1) at `change_at`."""
    env = gym.make("robocl/UGV-v0").unwrapped
    rng = np.random.default_rng(seed)
    low, high = env.action_space.low.astype(float), env.action_space.high.astype(float)
    obs, _ = env.reset(seed=seed)
    states, actions, regimes = [obs], [], []
    for step, action in enumerate(smooth_random_actions(rng, low, high, steps, hold_prob=0.3)):
        action[0] = np.clip(abs(action[0]), 0.3, 1.0)
        env.set_gains((1.0, 1.0) if step < change_at else (-1.0, 1.0))
        obs, *_ = env.step(action.astype(np.float32))
        states.append(obs)
        actions.append(action)
        regimes.append("nominal" if step < change_at else "gains(-1,1)")
    return np.asarray(states, float), np.asarray(actions, float), regimes


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> Path:
    """Two episodes: one with regime labels, one without (its change is detected on frozen's error, which the
    online unit replays beside it)."""
    root = tmp_path_factory.mktemp("logs")
    s, a, r = drive(1, 240, 80)
    write_episode(root / "a_labelled", s, a, r, 0.2, {"method": "test"}, t0_ns=1_764_000_000_000_000_000)
    s, a, _ = drive(2, 240, 120)
    write_episode(root / "b_unlabelled", s, a, None, 0.2, {"method": "test"}, t0_ns=1_764_000_100_000_000_000)
    return root


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("robocl-cache")


@pytest.fixture(scope="module")
def reference(logs, cache, tmp_path_factory):
    """The uninterrupted serial run (it also fills the model cache the other runs share)."""
    run_dir = tmp_path_factory.mktemp("reference")
    mp = pytest.MonkeyPatch()
    mp.setenv("ROBOCL_CACHE_DIR", str(cache))
    with pytest.raises(SystemExit) as exc:
        eval_main([*SMALL_UGV, f"data={logs}", METHODS, f"hydra.run.dir={run_dir}"])
    mp.undo()
    assert exc.value.code == 0
    return run_dir


def comparable(run_dir: Path) -> list[dict]:
    doc = json.loads((run_dir / "results.json").read_text())
    return [{k: v for k, v in row.items() if k not in TIMING} for row in doc["runs"]]


def finished_units(run_dir: Path) -> int:
    try:
        return sum(v["status"] == "done" for v in json.loads((run_dir / "units.json").read_text())["units"].values())
    except (OSError, ValueError):
        return 0


def test_units_cover_every_episode_and_method_in_order(reference):
    doc = json.loads((reference / "results.json").read_text())
    assert [(r["task"], r["method"]) for r in doc["runs"]] == [
        ("a_labelled", "frozen"), ("a_labelled", "online"), ("b_unlabelled", "frozen"), ("b_unlabelled", "online")]
    by = {(r["task"], r["method"]): r for r in doc["runs"]}
    # the unlabelled drive's change (gains reversed at step 120) is detected, the same for both methods
    assert by["b_unlabelled", "frozen"]["changes_total"] == by["b_unlabelled", "online"]["changes_total"] >= 1
    assert [c["index"] for c in by["b_unlabelled", "online"]["changes"]] == \
        [c["index"] for c in by["b_unlabelled", "frozen"]["changes"]]
    assert abs(by["b_unlabelled", "frozen"]["changes"][0]["index"] - 120) <= 10
    assert by["a_labelled", "online"]["post_change_mse_c1"] < by["a_labelled", "frozen"]["post_change_mse_c1"]
    assert [e["name"] for e in doc["episodes"]] == ["a_labelled", "b_unlabelled"]
    assert (reference / "errors.png").stat().st_size > 10_000
    assert "b_unlabelled: regime changes" in (reference / "summary.md").read_text()


def test_kill_9_of_robocl_eval_then_resume_equals_an_uninterrupted_run(reference, logs, cache, tmp_path, capsys):
    args = [*SMALL_UGV, f"data={logs}", METHODS, f"hydra.run.dir={tmp_path}"]
    sigkill_when("robocl.cli.eval", args, lambda: finished_units(tmp_path) >= 1, "a unit finished",
                 env={"ROBOCL_CACHE_DIR": str(cache)})
    finished = finished_units(tmp_path)
    assert 1 <= finished < 4, finished
    mp = pytest.MonkeyPatch()
    mp.setenv("ROBOCL_CACHE_DIR", str(cache))
    code, out, err = cli(eval_main, [*args, "resume=true"], capsys)
    mp.undo()
    assert code == 0, err
    assert f"resume: {finished} of 4 units already finished" in err
    assert comparable(tmp_path) == comparable(reference)
    assert (tmp_path / "errors.png").exists() and "| online |" in (tmp_path / "summary.md").read_text()


def test_ray_executor_gives_the_serial_results(reference, logs, cache, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ROBOCL_CACHE_DIR", str(cache))
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    code, _, err = cli(eval_main, [*SMALL_UGV, f"data={logs}", METHODS, "runtime.executor=ray", "runtime.workers=2",
                                   f"hydra.run.dir={tmp_path}"], capsys)
    assert code == 0, err
    assert comparable(tmp_path) == comparable(reference)
    units = json.loads((tmp_path / "results.json").read_text())["units"]
    assert units["units"] == 4 and len(units["workers"]) == 2
