"""Method `bias` in robocl-eval: the frozen model plus the running mean of its recent one-step residuals.

Hand-computed cases on a small real ensemble (UGV codec, normalizers fitted on real UGV exploration data)
whose recorded transitions are built to be exactly the model's prediction plus a known target offset,
then `robocl-eval methods=[frozen,bias]` end to end on a real MuJoCo UGV log (CSV).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import robocl_envs  # noqa: F401
import torch
from conftest import SMALL_UGV

from robocl.dynamics.ensemble import GaussianEnsemble
from robocl.eval.results import validate_results
from robocl.offline.evaluate import (
    BiasTrack,
    make_bias_track,
    make_dynamics_track,
    mean_target,
    running_bias,
)
from robocl.offline.readers import blocks
from robocl.robots.codec import PlanarBodyCodec
from robocl.sim.data import smooth_random_actions

SMALL = SMALL_UGV  # the small real ensemble every own-robot and offline test shares (conftest)


@pytest.fixture(scope="module")
def model(ugv_data):
    torch.manual_seed(0)
    m = GaussianEnsemble(PlanarBodyCodec(), ensemble_size=2, hidden_size=16, hidden_layers=1).eval()
    m.fit_normalizers(ugv_data[0])
    return m


def offset_stream(model, ugv_data, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """States and actions where s_{i+1} = integrate(s_i, model's mean target + offsets[i]): the model is
    exact up to a known target offset at every step."""
    train = ugv_data[0]
    n = len(offsets)
    actions = train.actions[:n].float()
    s = train.states[0].clone()
    states = [s]
    with torch.inference_mode():
        for i in range(n):
            target = mean_target(model, s[None], actions[i:i + 1])[0] + torch.as_tensor(offsets[i], dtype=torch.float32)
            s = model.codec.integrate(s[None], target[None])[0]
            states.append(s)
    return torch.stack(states).numpy().astype(np.float64), actions.numpy().astype(np.float64)


def run(track, states: np.ndarray, actions: np.ndarray, chunk: int, segments: list[int] | None = None):
    """Feed the stream through `track` in blocks, as evaluate_episode does (k-1 lookahead per block)."""
    n = len(actions)
    seg = segments or [0] * n
    items = [(seg[i], i, states[i], actions[i], states[i + 1], None) for i in range(n)]
    for block in blocks(iter(items), chunk, track.k - 1):
        track.process(block, torch.as_tensor(block.states, dtype=torch.float32),
                      torch.as_tensor(block.actions, dtype=torch.float32))
    return track.series(), track.kseries()


def test_running_bias_by_hand():
    r = torch.tensor([[1.0], [2.0], [3.0], [4.0], [5.0]])
    bias, hist = running_bias(torch.zeros(0, 1), r, window=2)
    assert bias[:, 0].tolist() == [0.0, 1.0, 1.5, 2.5, 3.5]  # mean of the (up to) 2 residuals strictly before
    assert hist[:, 0].tolist() == [4.0, 5.0]
    # carried history: the same numbers in two calls as in one
    b1, h1 = running_bias(torch.zeros(0, 1), r[:3], window=2)
    b2, _ = running_bias(h1, r[3:], window=2)
    assert torch.equal(torch.cat([b1, b2]), bias)
    # a window longer than the data: the mean of everything before
    bias, _ = running_bias(torch.tensor([[10.0]]), r[:2], window=5)
    assert bias[:, 0].tolist() == [10.0, 5.5]


def test_constant_offset_bias_is_exact_frozen_pays_c2_over_scale2(model, ugv_data):
    c = np.array([0.02, -0.01, 0.03, 0.05, 0.0, -0.04])  # body dx, dy, dyaw, dv_forward, dv_lateral, dyaw_rate
    n, window, k = 60, 10, 5
    states, actions = offset_stream(model, ugv_data, np.tile(c, (n, 1)))
    scale = model.target_norm.std.double().numpy()
    expected = float(np.mean((c / scale) ** 2))
    frozen = make_dynamics_track("frozen", model, None, k, 0, stride=1)
    e_frozen, k_frozen = run(frozen, states, actions, chunk=16)
    bias = make_bias_track("bias", model, k, window, stride=1)
    e_bias, k_bias = run(bias, states, actions, chunk=16)
    assert e_frozen == pytest.approx(np.full(n, expected), rel=1e-3)
    assert e_bias[0] == pytest.approx(expected, rel=1e-3)  # nothing before the first transition: bias 0
    assert np.all(e_bias[1:] < 1e-4 * expected)  # every residual so far is exactly c
    # the k-step rollout adds the same bias at every step: exact too, while frozen's offset accumulates
    valid = np.isfinite(k_bias)
    assert valid.sum() == n - k + 1 and np.array_equal(valid, np.isfinite(k_frozen))
    assert np.all(k_bias[1:][valid[1:]] < 1e-3 * expected)
    assert np.nanmean(k_frozen) > 5 * expected
    assert isinstance(bias, BiasTrack) and not bias.learning and bias.adaptive
    # it learns no weights
    for p, q in zip(bias.model.parameters(), model.parameters()):
        assert torch.equal(p, q)


def test_bias_at_t_uses_only_the_window_before_t(model, ugv_data):
    """An impulse offset d at transition t0: bias's error is frozen's at t0 itself (its own residual is not
    used), (d/W)^2/scale^2 at t0+1..t0+W, and 0 again from t0+W+1 on; block boundaries change nothing."""
    n, window, t0 = 40, 4, 17
    d = np.array([0.0, 0.0, 0.0, 0.08, 0.0, 0.0])
    offsets = np.zeros((n, 6))
    offsets[t0] = d
    states, actions = offset_stream(model, ugv_data, offsets)
    scale = model.target_norm.std.double().numpy()
    full, part = float(np.mean((d / scale) ** 2)), float(np.mean((d / window / scale) ** 2))
    expected = np.zeros(n)
    expected[t0] = full
    expected[t0 + 1:t0 + 1 + window] = part
    for chunk in (64, 7, 1):  # one block; blocks that split the window; one transition per block
        e, _ = run(make_bias_track("bias", model, 1, window), states, actions, chunk)
        assert e == pytest.approx(expected, rel=1e-3, abs=1e-6 * part), chunk
    # a segment break empties the window: after the break at t0+2, nothing of d is left
    segments = [0] * (t0 + 2) + [1] * (n - t0 - 2)
    e, _ = run(make_bias_track("bias", model, 1, window), states, actions, 7, segments)
    expected_break = expected.copy()
    expected_break[t0 + 2:] = 0.0
    assert e == pytest.approx(expected_break, rel=1e-3, abs=1e-6 * part)


# ---- end to end: robocl-eval on a real UGV log -------------------------------------------------------------
def cli(args: list[str], capsys) -> tuple[int, str, str]:
    from robocl.cli.eval import main

    with pytest.raises(SystemExit) as exc:
        main([*SMALL, *args])
    out = capsys.readouterr()
    return int(exc.value.code), out.out, out.err


def ugv_csv(path: Path) -> Path:
    """A real MuJoCo UGV drive: 60 nominal steps, then 100 with the forward command gain halved."""
    env = gym.make("robocl/UGV-v0").unwrapped
    rng = np.random.default_rng(4)
    low, high = env.action_space.low.astype(float), env.action_space.high.astype(float)
    obs, _ = env.reset(seed=6)
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["t", "x", "y", "yaw", "v_forward", "v_lateral", "yaw_rate", "v_cmd", "w_cmd", "regime"])
        for step, action in enumerate(smooth_random_actions(rng, low, high, 160, hold_prob=0.7)):
            action[0] = np.clip(abs(action[0]), 0.3, 1.0)
            env.set_gains((1.0, 1.0) if step < 60 else (0.5, 1.0))
            out.writerow([f"{0.2 * step:.1f}", *map(float, obs), *map(float, action),
                          "nominal" if step < 60 else "gains(0.5,1)"])  # quoted: the label holds a comma
            obs, *_ = env.step(action.astype(np.float32))
        out.writerow([f"{0.2 * 160:.1f}", *map(float, obs), "", "", ""])
    return path


def test_robocl_eval_bias_on_a_ugv_log(tmp_path, capsys):
    data = ugv_csv(tmp_path / "ugv.csv")
    code, out, err = cli([f"data={data}", "methods=[frozen,bias]", f"hydra.run.dir={tmp_path / 'e'}"], capsys)
    assert code == 0, err
    doc = json.loads((tmp_path / "e" / "results.json").read_text())
    validate_results(doc)
    rows = {r["method"]: r for r in doc["runs"]}
    assert set(rows) == {"frozen", "bias"}
    b, f = rows["bias"], rows["frozen"]
    assert b["transitions"] == f["transitions"] == 160
    assert b["learning"] is False and b["adaptive"] is True and b["bias_window"] == 10
    assert f["adaptive"] is False
    for key in ("dyn_mse", "kstep_mse", "post_change_mse_c1", "forgetting_mse", "transitions_per_s"):
        assert b[key] is not None and np.isfinite(b[key]), key
    assert b["changes_total"] == 1 and b["changes"][0]["index"] == 60
    assert b["changes"][0]["after"] == "gains(0.5,1)"
    assert "| bias |" in out
    # frozen's numbers do not depend on bias beside it
    code, _, err = cli([f"data={data}", "methods=[frozen]", f"hydra.run.dir={tmp_path / 'f'}"], capsys)
    assert code == 0, err
    alone = json.loads((tmp_path / "f" / "results.json").read_text())["runs"][0]
    assert alone["dyn_mse"] == pytest.approx(f["dyn_mse"], abs=1e-9)
    # a bad window is one line, exit 2, before the run directory exists
    code, _, err = cli([f"data={data}", "methods=[bias]", "bias.window=0", f"hydra.run.dir={tmp_path / 'x'}"],
                       capsys)
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "bias.window=0" in lines[0], err
    assert not (tmp_path / "x").exists()
