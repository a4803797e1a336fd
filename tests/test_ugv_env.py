"""UGV environment and courses: real MuJoCo physics, each regime checked against nominal behaviour."""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")  # offscreen rendering on a headless machine

import gymnasium as gym
import numpy as np
import pytest
import robocl_envs  # noqa: F401  (registers robocl/UGV-v0)
from gymnasium.utils.env_checker import check_env
from robocl_envs.courses import CourseError, list_courses, load_course
from robocl_envs.ugv import UGVEnv, UGVParams

# check_env advice that does not indicate an error: the action box is fixed by the AFM protocol
# and world positions/velocities are genuinely unbounded.
ADVISORY = ("symmetric and normalized", "is probably too", "not having a spec")
V_IDX, LAT_IDX, RATE_IDX = 3, 4, 5


def rollout(params: UGVParams | None, actions: list[tuple[float, float]], seed: int = 0) -> np.ndarray:
    """Observations (reset + one per action) of a fresh env under `params`."""
    env = UGVEnv(params=params)
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for a in actions:
        obs, *_ = env.step(np.array(a, dtype=np.float32))
        out.append(obs)
    return np.array(out)


def progress(traj: np.ndarray) -> float:
    """Distance travelled along the initial heading."""
    d = traj[-1, :2] - traj[0, :2]
    return float(d @ [math.cos(traj[0, 2]), math.sin(traj[0, 2])])


def yaw_change(traj: np.ndarray) -> float:
    return float(np.unwrap(traj[:, 2])[-1] - traj[0, 2])


FORWARD = [(0.5, 0.0)] * 10
SHARP_TURN = [(1.0, 0.0)] * 6 + [(1.0, math.pi / 2)] * 4


# ---- gymnasium contract -------------------------------------------------------------------------
def test_check_env_passes_without_error_warnings() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(UGVEnv().unwrapped)
    errors = [str(w.message) for w in caught if not any(a in str(w.message) for a in ADVISORY)]
    assert errors == []


def test_registered_and_spaces_match_contract() -> None:
    env = gym.make("robocl/UGV-v0")
    assert isinstance(env.unwrapped, UGVEnv)
    assert env.action_space.dtype == np.float32
    np.testing.assert_allclose(env.action_space.low, [-1, -math.pi / 2], rtol=1e-6)
    np.testing.assert_allclose(env.action_space.high, [1, math.pi / 2], rtol=1e-6)
    assert env.observation_space.shape == (6,) and env.observation_space.dtype == np.float64
    obs, _ = env.reset(seed=0, options={"pose": (3.0, -2.0, math.pi - 1e-4)})
    obs, reward, terminated, truncated, info = env.step(np.zeros(2, np.float32))
    assert obs.dtype == np.float64 and reward == 0.0 and not terminated and not truncated
    assert abs(obs[0] - 3.0) < 0.02 and abs(obs[1] + 2.0) < 0.02
    assert -math.pi <= obs[2] < math.pi
    assert set(info) >= {"wheel_speed_cmd", "gains"} and info["gains"] == (1.0, 1.0)
    env.close()


def test_seeded_resets_give_identical_trajectories() -> None:
    actions = [tuple(a) for a in np.random.default_rng(3).uniform([-1, -1.5], [1, 1.5], (8, 2))]
    a, b = rollout(None, actions, seed=11), rollout(None, actions, seed=11)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[0], rollout(None, [], seed=12)[0])


def test_actions_are_clipped_and_non_finite_rejected() -> None:
    env = UGVEnv()
    env.reset(seed=0)
    np.testing.assert_allclose(env.wheel_setpoints([5.0, 9.0]), env.wheel_setpoints([1.0, math.pi / 2]))
    with pytest.raises(ValueError):
        env.step(np.array([np.nan, 0.0]))


def test_flip_terminates() -> None:
    env = UGVEnv()
    env.reset(seed=0)
    env.data.qpos[2] = 0.3
    env.data.qpos[3:7] = [math.cos(math.pi / 4), math.sin(math.pi / 4), 0.0, 0.0]  # rolled 90 deg
    assert env.step(np.zeros(2))[2]


def test_render_rgb_array() -> None:
    env = UGVEnv(render_mode="rgb_array")
    env.reset(seed=0)
    try:
        frame = env.render()
    except Exception as exc:  # no EGL/OSMesa on this machine: rendering is optional
        pytest.skip(f"offscreen rendering unavailable: {exc}")
    finally:
        env.close()
    assert frame.shape == (480, 640, 3) and frame.dtype == np.uint8 and frame.std() > 5


# ---- nominal motion -------------------------------------------------------------------------
def test_forward_half_metre_per_second_for_two_seconds_moves_about_one_metre() -> None:
    traj = rollout(None, FORWARD)
    assert 0.85 < progress(traj) < 1.05
    assert abs(traj[-1, V_IDX] - 0.5) < 0.03 and abs(traj[-1, LAT_IDX]) < 0.02
    assert abs(yaw_change(traj)) < 0.02


def test_turn_in_place_tracks_yaw_rate() -> None:
    traj = rollout(None, [(0.0, 1.0)] * 10)
    assert abs(yaw_change(traj) - 2.0) < 0.25  # 2 s at 1 rad/s, less a little tyre scrub
    assert abs(traj[-1, RATE_IDX] - 1.0) < 0.1
    assert np.linalg.norm(traj[-1, :2] - traj[0, :2]) < 0.05


# ---- regimes --------------------------------------------------------------------------------
def test_negative_velocity_gain_drives_backwards() -> None:
    traj = rollout(UGVParams(gains=(-1.0, 1.0)), FORWARD)
    assert progress(traj) < -0.85


def test_set_gains_mid_episode_is_cheap_and_effective() -> None:
    env = UGVEnv()
    env.reset(seed=0)
    for _ in range(5):
        env.step(np.array([0.5, 0.0]))
    model = env.model
    env.set_gains((-1.0, 1.0))
    for _ in range(5):
        obs, _, _, _, info = env.step(np.array([0.5, 0.0]))
    assert env.model is model and info["gains"] == (-1.0, 1.0) and obs[V_IDX] < -0.4
    assert env.params == UGVParams(gains=(-1.0, 1.0))


def test_heavy_payload_slows_acceleration() -> None:
    nominal, loaded = rollout(None, FORWARD[:3]), rollout(UGVParams(payload_kg=20.0), FORWARD[:3])
    assert loaded[1, V_IDX] < 0.6 * nominal[1, V_IDX]
    assert progress(loaded) < progress(nominal) - 0.1


def test_slippery_floor_slides_in_a_sharp_turn() -> None:
    nominal, ice = rollout(None, SHARP_TURN), rollout(UGVParams(friction=0.1), SHARP_TURN)
    assert abs(nominal[-1, LAT_IDX]) < 0.1
    assert abs(ice[-1, LAT_IDX]) > 0.2  # skidding sideways
    assert abs(ice[-1, RATE_IDX] - nominal[-1, RATE_IDX]) > 0.1


def test_weak_left_motor_curves_a_straight_command_left() -> None:
    assert abs(yaw_change(rollout(None, FORWARD))) < 0.02
    assert yaw_change(rollout(UGVParams(motor_strength=(0.4, 1.0)), FORWARD)) > 0.08


def test_larger_wheels_go_faster_than_commanded() -> None:
    traj = rollout(UGVParams(wheel_radius_scale=(1.3, 1.3)), FORWARD)
    assert traj[-1, V_IDX] > 0.6 and progress(traj) > 1.1


def test_set_params_edits_in_place_and_restores_nominal() -> None:
    env = UGVEnv()
    m = env.model
    size, friction, gain = m.geom_size.copy(), m.geom_friction.copy(), m.actuator_gainprm.copy()
    env.set_params(UGVParams(payload_kg=20, friction=0.2, wheel_radius_scale=(1.3, 0.8),
                             motor_strength=(1.0, 0.4)))
    assert env.model is m
    assert m.body("payload").mass[0] == 20.0
    assert m.body("chassis").subtreemass[0] > 26.0  # derived constants recomputed
    assert m.geom("wheel_left").size[0] == pytest.approx(1.3 * size[m.geom("wheel_left").id, 0])
    assert m.actuator("wheel_right").forcerange[1] == pytest.approx(0.4 * 0.8)
    env.set_params(UGVParams())
    np.testing.assert_array_equal(m.geom_size, size)
    np.testing.assert_array_equal(m.geom_friction, friction)
    np.testing.assert_array_equal(m.actuator_gainprm, gain)


def test_params_validate_and_accept_lists() -> None:
    assert UGVParams(gains=[2, 2]).gains == (2.0, 2.0)  # type: ignore[arg-type]
    for bad in ({"friction": 0.0}, {"payload_kg": -1.0}, {"wheel_radius_scale": (3.0, 1.0)},
                {"gains": (1.0,)}):
        with pytest.raises(ValueError):
            UGVParams(**bad)  # type: ignore[arg-type]


# ---- courses --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["city_a", "city_b"])
def test_shipped_courses_are_city_scale(name: str) -> None:
    assert name in list_courses()
    pts = load_course(name)
    assert pts.dtype == np.float64 and pts.ndim == 2 and pts.shape[1] == 2 and 30 <= len(pts) <= 33
    gaps = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    assert gaps.min() >= 2.0 and gaps.max() <= 4.0
    assert 2.0 <= np.linalg.norm(pts[0]) <= 3.0


def test_course_from_csv_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text("x,y\n1.5,0\n3,2.5\n")
    np.testing.assert_array_equal(load_course(str(path)), [[1.5, 0.0], [3.0, 2.5]])


@pytest.mark.parametrize(
    ("content", "expected"),
    [("", "empty"), ("x,y\n", "no waypoints"), ("x,y\n1,2\n3,abc\n", "line 3"),
     ("a,b,c\n1,2,3\n", "header"), ("x,y\n1,2,3\n", "3 columns"), ("x,y\n1,inf\n", "not finite")],
)
def test_bad_course_files_raise_one_clear_line(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(CourseError, match=expected) as err:
        load_course(str(path))
    assert "\n" not in str(err.value) and str(path) in str(err.value)


@pytest.mark.parametrize("value", ["foo", "missing_dir/none.csv", ""])
def test_unknown_course_names_the_value_and_the_choices(value: str) -> None:
    with pytest.raises(CourseError) as err:
        load_course(value)
    msg = str(err.value)
    assert msg.startswith(f"task.map={value!r}") and "city_a" in msg and ".csv" in msg
    assert isinstance(err.value, ValueError)
