"""Quadrotor environment: real MuJoCo physics under the cascaded low-level controller.

Each regime is checked against what a real Crazyflie-class quad with a PX4-like autopilot does:
hover holds, velocity commands integrate to distance, unknown payload sags then holds, a weak
motor is absorbed, a throttle cut crashes. The figure-eight feed-forward RMSE printed here is the
baseline a learned-model MPPI planner should beat.
"""

from __future__ import annotations

import math
import time
import warnings

import gymnasium as gym
import numpy as np
import pytest
import robocl_envs  # noqa: F401  (registers robocl/Quadrotor-v0)
from gymnasium.utils.env_checker import check_env
from robocl_envs.quad_tasks import make_task, reference, task_duration, waypoints
from robocl_envs.quadrotor import QuadParams, QuadrotorEnv

# check_env advice that does not indicate an error: the action box is in physical units (m/s,
# rad/s) by design and world positions/velocities are genuinely unbounded.
ADVISORY = ("symmetric and normalized", "is probably too", "not having a spec")
HOME = np.array([0.0, 0.0, 1.0])
ZERO = np.zeros(4, dtype=np.float32)


def fly(env: QuadrotorEnv, actions, seed: int = 0) -> tuple[np.ndarray, list[dict]]:
    """Reset, apply `actions` (a list, or a callable k -> action); observations incl. the reset."""
    obs, _ = env.reset(seed=seed)
    out, infos = [obs], []
    n = len(actions) if not callable(actions) else None
    k = 0
    while n is None or k < n:
        a = actions(k) if callable(actions) else actions[k]
        if a is None:
            break
        obs, _, term, _, info = env.step(np.asarray(a, dtype=np.float32))
        out.append(obs)
        infos.append(info)
        k += 1
        if term:
            break
    return np.array(out), infos


def steps(env: QuadrotorEnv, seconds: float) -> int:
    return round(seconds * env.control_hz)


@pytest.mark.parametrize("command", ["velocity", "attitude"])
def test_check_env_and_registration(command):
    env = gym.make("robocl/Quadrotor-v0", command=command)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    serious = [str(w.message) for w in caught if not any(a in str(w.message) for a in ADVISORY)]
    assert not serious, serious
    assert env.observation_space.shape == (12,) and env.observation_space.dtype == np.float64
    assert env.unwrapped.nstep == 20  # 25 Hz control over 500 Hz physics


def test_action_space_contract():
    space = QuadrotorEnv().action_space
    assert space.dtype == np.float32
    np.testing.assert_allclose(space.high, [1, 1, 1, math.pi / 2], rtol=1e-6)
    np.testing.assert_allclose(space.low, -space.high)
    env = QuadrotorEnv()
    np.testing.assert_allclose(env.setpoint(np.array([5.0, -5.0, 0.2, 9.0])), [1, -1, 0.2, math.pi / 2])
    with pytest.raises(ValueError, match="whole number"):
        QuadrotorEnv(control_hz=30.0)
    with pytest.raises(ValueError, match="command"):
        QuadrotorEnv(command="rates")


def test_deterministic_under_seed_with_gusts():
    params = QuadParams(gust_std=0.8, wind=(1.0, 0.0, 0.0))
    rng = np.random.default_rng(3)
    actions = [rng.uniform(-0.5, 0.5, 4) for _ in range(40)]
    a, _ = fly(QuadrotorEnv(params=params), actions, seed=7)
    b, _ = fly(QuadrotorEnv(params=params), actions, seed=7)
    c, _ = fly(QuadrotorEnv(params=params), actions, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_reset_pose_option():
    env = QuadrotorEnv()
    obs, _ = env.reset(seed=0, options={"pose": (1.0, -2.0, 1.5, 0.5)})
    np.testing.assert_allclose(obs[:3], [1.0, -2.0, 1.5], atol=0.011)
    assert abs(obs[8] - 0.5) < 0.011 and np.allclose(obs[3:6], 0) and np.allclose(obs[9:], 0)
    with pytest.raises(ValueError, match="pose"):
        env.reset(options={"pose": (1.0, 2.0)})


def test_hover_holds_within_5cm():
    env = QuadrotorEnv()
    t0 = time.perf_counter()
    traj, infos = fly(env, [ZERO] * steps(env, 5.0))
    per_step = (time.perf_counter() - t0) / (len(traj) - 1)
    err = np.linalg.norm(traj[:, :3] - HOME, axis=1)
    print(f"\nhover: max |p - (0,0,1)| = {err.max() * 100:.2f} cm over 5 s (incl. +-1 cm start noise); "
          f"step time {per_step * 1e3:.2f} ms per 40 ms control step")
    assert not any(i["crash"] for i in infos)
    assert err.max() < 0.05
    assert np.abs(traj[-1, 3:6]).max() < 0.01 and np.abs(traj[-1, 6:8]).max() < 0.01


def test_velocity_command_integrates_to_distance():
    env = QuadrotorEnv()
    n = steps(env, 2.0)
    traj, _ = fly(env, [np.array([0.5, 0, 0, 0])] * n + [ZERO] * steps(env, 1.5))
    dx = traj[-1, 0] - traj[0, 0]
    vx = traj[: n + 1, 3]
    tau = (np.argmax(vx > 0.63 * 0.5)) / env.control_hz
    print(f"\nvelocity step 0.5 m/s x 2 s: moved {dx:.3f} m, 63 % rise {tau * 1e3:.0f} ms, "
          f"peak vx {vx.max():.3f}")
    assert 0.9 < dx < 1.15
    assert 0.48 < vx[-1] < 0.55  # tracks the setpoint within 2 s
    assert np.abs(traj[:, [1, 2]] - HOME[[1, 2]]).max() < 0.05  # no cross-coupling
    assert abs(traj[-1, 3]) < 0.03  # stopped again


def test_payload_sags_then_holds():
    env = QuadrotorEnv(params=QuadParams(payload_frac=0.6))
    traj, infos = fly(env, [ZERO] * steps(env, 5.0))
    z = traj[:, 2]
    print(f"\n+60 % payload (controller uses nominal mass): sag {(1 - z.min()) * 100:.1f} cm, "
          f"final z {z[-1]:.3f} m")
    assert not any(i["crash"] for i in infos)
    assert 0.1 < 1.0 - z.min() < 0.5  # a real model mismatch, caught by the integrator
    assert abs(z[-1] - z[-25]) < 0.01 and abs(traj[-1, 5]) < 0.02  # holds (vz -> 0)


def test_weak_motor_still_hovers():
    env = QuadrotorEnv(params=QuadParams(motor_efficiency=(0.7, 1.0, 1.0, 1.0)))
    traj, infos = fly(env, [ZERO] * steps(env, 5.0))
    dev = np.abs(traj[:, :3] - HOME).max(axis=0)
    tilt = np.abs(traj[:, 6:8]).max()
    print(f"\nrotor 1 at 70 %: max deviation x/y/z {np.round(dev * 100, 1)} cm, max tilt "
          f"{math.degrees(tilt):.1f} deg, final {np.round(traj[-1, :3], 3)}")
    assert not any(i["crash"] for i in infos)
    assert dev.max() < 0.15 and tilt < math.radians(15)
    assert np.abs(traj[-1, 3:6]).max() < 0.02


def test_wind_pushes_downwind_and_drag_is_plausible():
    env = QuadrotorEnv(params=QuadParams(wind=(3.0, 0.0, 0.0)))
    traj, infos = fly(env, [ZERO] * steps(env, 5.0))
    assert not any(i["crash"] for i in infos)
    assert traj[-1, 0] > 0.1  # blown along +x before the velocity integrator takes the wind out
    assert np.abs(traj[-1, 3]) < 0.03
    # steady state: leans into the wind (nose up is negative pitch about +y) until thrust balances
    # the drag of 3 m/s airspeed: (K_LIN + K_QUAD * 3) * 3 = 0.0345 N against 0.275 N weight
    drag = (7e-3 + 1.5e-3 * 3.0) * 3.0
    assert -traj[-1, 7] == pytest.approx(math.atan2(drag, 0.028 * 9.81), abs=0.01)


def test_throttle_cut_crashes():
    env = QuadrotorEnv(command="attitude")
    traj, infos = fly(env, [np.array([0.0, 0.0, 0.0, 0.0])] * 50)
    assert infos[-1]["crash"] and len(infos) < 50
    assert traj[-1, 2] < 0.1


def test_huge_tilt_crashes():
    env = QuadrotorEnv()
    env.reset(seed=0)
    half = math.radians(80.0) / 2
    env.data.qpos[3:7] = (math.cos(half), math.sin(half), 0.0, 0.0)
    _, _, terminated, _, info = env.step(ZERO)
    assert terminated and info["crash"]


def test_set_params_mid_episode_in_place():
    env = QuadrotorEnv()
    model = env.model
    env.reset(seed=0)
    for _ in range(10):
        env.step(ZERO)
    env.set_params(QuadParams(payload_frac=0.3, motor_efficiency=(1, 1, 0.8, 1)))
    assert env.model is model
    assert math.isclose(env.model.body_subtreemass[env.model.body("quad").id], 0.028 * 1.3, rel_tol=1e-9)
    assert env.model.actuator_gainprm[2, 0] == pytest.approx(0.8)
    assert env.controller.nominal.mass == pytest.approx(0.028)  # the autopilot is not told
    env.set_gains((-1.0, 2.0, 1.0, 1.0))
    assert env.params.payload_frac == 0.3 and env.params.gains == (-1.0, 2.0, 1.0, 1.0)
    np.testing.assert_allclose(env.setpoint(np.array([0.5, 0.5, 0, 0])), [-0.5, 1.0, 0, 0])
    with pytest.raises(ValueError, match="gains"):
        QuadParams(gains=(1.0, 1.0))
    with pytest.raises(ValueError, match="payload_frac"):
        QuadParams(payload_frac=-0.1)


def test_gain_intervention_reverses_motion():
    env = QuadrotorEnv(params=QuadParams(gains=(-1.0, 1.0, 1.0, 1.0)))
    traj, _ = fly(env, [np.array([0.5, 0, 0, 0])] * steps(env, 1.0))
    assert traj[-1, 0] < -0.2


def test_task_references_are_vectorized():
    t = np.linspace(-1.0, 20.0, 50).reshape(5, 10)
    for name in ("hover", "waypoints", "figure_eight"):
        pos, vel = reference(name, t)
        assert pos.shape == vel.shape == (5, 10, 3)
        np.testing.assert_allclose(reference(name, 0.0)[0], HOME)
        end = task_duration(name)
        assert np.allclose(reference(name, end + 5.0)[1], 0.0)
    eight = make_task("figure_eight")
    p, v = reference("figure_eight", np.array([0.0, 2.0 + eight.ramp / 2.0]))
    np.testing.assert_allclose(p[1], [1.0, 0.0, 1.0], atol=1e-12)  # quarter period (after the ramp): x = a
    np.testing.assert_allclose(v[0], 0.0, atol=1e-12)  # starts from rest
    # velocity is the derivative of position
    ts = np.linspace(0.1, 15.0, 41)
    for name in ("figure_eight", "waypoints"):
        task = make_task(name)
        fd = (task(ts + 1e-5)[0] - task(ts - 1e-5)[0]) / 2e-5
        np.testing.assert_allclose(task(ts)[1], fd, atol=1e-3)
    w = waypoints([(0, 0, 1), (2, 0, 1)], speed=1.0, dwell=0.0)
    assert w.duration == pytest.approx(2.0)
    np.testing.assert_allclose(w(1.0)[0], [1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="task"):
        reference("loop", 0.0)


def feed_forward_rmse(env: QuadrotorEnv, lead: float, kp: float) -> tuple[float, bool]:
    """Track the env's task with v = v_ref(t + lead) + kp * (p_ref(t) - p); (RMSE, crashed)."""
    obs, _ = env.reset(seed=0)
    errs, t, crashed = [], 0.0, False
    while True:
        _, v_ref = env.task(t + lead)
        p_ref, _ = env.task(t)
        action = np.r_[v_ref + kp * (p_ref - obs[:3]), 0.0].astype(np.float32)
        obs, _, term, trunc, info = env.step(action)
        errs.append(info["tracking_error"])
        t, crashed = info["t"], info["crash"]
        if term or trunc:
            break
    assert math.isclose(t, env.task.duration)
    return float(np.sqrt(np.mean(np.square(errs)))), crashed


def test_figure_eight_feed_forward_baseline():
    env = QuadrotorEnv(task="figure_eight")
    pure, crash_a = feed_forward_rmse(env, lead=0.0, kp=0.0)
    with_p, crash_b = feed_forward_rmse(env, lead=0.3, kp=1.0)
    print(f"\nfigure eight (a=1, b=0.5, 8 s period, 2 laps): tracking RMSE pure feed-forward "
          f"{pure:.3f} m; feed-forward (0.3 s lead) + P(1.0) {with_p:.3f} m")
    assert not crash_a and not crash_b
    assert pure < 0.35 and with_p < 0.10
