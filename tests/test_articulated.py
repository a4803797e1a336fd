"""Procedural cabinets, multi-view point clouds and physical drags (real MuJoCo, fast)."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import robocl_envs  # noqa: F401
from robocl_envs.articulated import (
    CATEGORIES,
    PRISMATIC,
    REVOLUTE,
    CabinetEnv,
    cabinet_mjcf,
    drag_to_delta,
    sample_cabinet,
)
from robocl_envs.pointcloud import part_motion


@pytest.fixture(scope="module")
def env():
    e = CabinetEnv()
    yield e
    e.close()


def surface_distance(env: CabinetEnv, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unsigned distance of each point to the nearest object box surface, and that box's label."""
    m, d = env.model, env.data
    ids = np.flatnonzero(env.geom_label >= 0)
    local = np.einsum("gji,pgj->pgi", d.geom_xmat[ids].reshape(-1, 3, 3), points[:, None] - d.geom_xpos[ids][None])
    q = np.abs(local) - m.geom_size[ids]
    dist = np.abs(np.linalg.norm(np.maximum(q, 0), axis=2) + np.minimum(q.max(axis=2), 0))
    return dist.min(axis=1), env.geom_label[ids[dist.argmin(axis=1)]]


def test_generator_categories_and_determinism():
    for cat in CATEGORIES:
        for seed in range(6):
            spec = sample_cabinet(seed, cat)
            kinds = {p.kind for p in spec.parts}
            if cat == "drawer_unit":
                assert kinds == {"drawer"}
            elif cat == "fridge":
                assert kinds == {"door"} and 1 <= len(spec.parts) <= 2 and spec.height >= 1.4
            else:
                assert kinds == {"drawer", "door"}
            assert all(p.limit > 0 and p.damping > 0 and p.handle_len > 0 for p in spec.parts)
    assert cabinet_mjcf(sample_cabinet(5, "cabinet")) == cabinet_mjcf(sample_cabinet(5, "cabinet"))
    assert cabinet_mjcf(sample_cabinet(5, "cabinet")) != cabinet_mjcf(sample_cabinet(6, "cabinet"))


@pytest.mark.parametrize("category", CATEGORIES)
def test_point_cloud_lies_on_geometry_with_matching_labels(env, category):
    env.reset(options={"spec": sample_cabinet(2, category)})
    lo, hi = env.limits()
    env.set_state(np.random.default_rng(0).uniform(lo, hi))
    pc = env.point_cloud(2048, np.random.default_rng(0))
    assert pc.points.shape == (2048, 3) and pc.colors.shape == (2048, 3) and pc.labels.shape == (2048,)
    dist, nearest_label = surface_distance(env, pc.points)
    assert np.quantile(dist, 0.99) < 0.002  # metres: back-projection lands on the box surfaces
    assert (nearest_label == pc.labels).mean() > 0.99  # segmentation labels match the part geoms
    assert set(np.unique(pc.labels)) == set(range(env.n_parts + 1))  # every part and the body are seen
    # FPS order: the first 64 points are spread out (no near-duplicates among them)
    head = pc.points[:64]
    gaps = np.linalg.norm(head[:, None] - head[None], axis=2) + np.eye(64)
    assert gaps.min() > 0.03


def test_part_motion_matches_simulation(env):
    spec = sample_cabinet(1, "cabinet")
    env.reset(options={"spec": spec})
    for k, part in enumerate(spec.parts, start=1):
        env.set_state(np.zeros(env.n_parts))
        ids = np.flatnonzero(env.geom_label == k)
        before = env.data.geom_xpos[ids].copy()
        delta = 0.12 if part.kind == "drawer" else 0.8
        disp = env.motion(before, np.full(len(ids), k), k, delta)
        q = np.zeros(env.n_parts)
        q[k - 1] = delta
        env.set_state(q)
        np.testing.assert_allclose(before + disp, env.data.geom_xpos[ids], atol=1e-5)


def test_drag_to_delta_hand_computed():
    x, z = np.array([1.0, 0, 0]), np.array([0, 0, 1.0])
    assert drag_to_delta(np.zeros(3), np.array([0.1, 0.3, 0]), PRISMATIC, x, np.zeros(3), 0.0, 0.0, 0.5) == \
        pytest.approx(0.1)
    assert drag_to_delta(np.zeros(3), np.array([0.9, 0, 0]), PRISMATIC, x, np.zeros(3), 0.2, 0.0, 0.5) == \
        pytest.approx(0.3)  # clamped at the upper limit
    assert drag_to_delta(np.zeros(3), np.array([-0.4, 0, 0]), PRISMATIC, x, np.zeros(3), 0.0, 0.0, 0.5) == 0.0
    # a point 1 m from a z hinge dragged to the y axis: a quarter turn
    d = drag_to_delta(np.array([1.0, 0, 0.3]), np.array([-1.0, 2.0, 0]), REVOLUTE, z, np.zeros(3), 0.0, 0.0, 3.0)
    assert d == pytest.approx(math.pi / 2)
    disp = part_motion(np.array([[1.0, 0, 0], [2.0, 0, 0]]), np.array([1, 0]), 1, REVOLUTE, z, np.zeros(3), d)
    np.testing.assert_allclose(disp, [[-1.0, 1.0, 0], [0, 0, 0]], atol=1e-6)


def test_drag_on_drawer_handle_moves_only_that_drawer(env):
    env.reset(options={"spec": sample_cabinet(0, "drawer_unit")})
    k = 2
    handle = env.data.geom(f"p{k}_handle").xpos.copy()
    frame = env.joint_frame(k)
    vec = 0.15 * frame.axis + np.array([0.04, 0.0, 0.03])  # a sloppy pull
    expected = drag_to_delta(handle, vec, frame.joint_type, frame.axis, frame.origin, 0.0, frame.lo, frame.hi)
    _, _, _, _, info = env.step(np.concatenate([handle, vec]))
    assert info["part"] == k
    q = info["q_after"]
    assert q[k - 1] == pytest.approx(expected, abs=0.003)
    assert np.abs(np.delete(q, k - 1)).max() < 1e-6


def test_drag_on_static_body_and_door(env):
    env.reset(options={"spec": sample_cabinet(1, "cabinet")})
    top = env.data.geom("top").xpos.copy() + np.array([0, 0, env.model.geom("top").size[2]])
    _, _, _, _, info = env.step(np.concatenate([top, [0.0, -0.2, 0.0]]))
    assert info["part"] == 0 and np.abs(info["q_after"]).max() < 1e-9
    k = next(i for i, p in enumerate(env.spec.parts, start=1) if p.kind == "door")
    handle = env.data.geom(f"p{k}_handle").xpos.copy()
    frame = env.joint_frame(k)
    vec = np.array([0.0, -0.25, 0.0])
    expected = drag_to_delta(handle, vec, REVOLUTE, frame.axis, frame.origin, 0.0, frame.lo, frame.hi)
    _, _, _, _, info = env.step(np.concatenate([handle, vec]))
    assert expected > 0.2 and info["q_after"][k - 1] == pytest.approx(expected, abs=0.01)


def test_gym_registration():
    env = gym.make("robocl/Cabinet-v0", category="fridge")
    obs, info = env.reset(seed=4)
    assert obs.shape == (8,) and info["spec"].category == "fridge"
    env.close()
