"""Drag-MPC with the physical gripper (real MuJoCo), and the cabinet_drag experiment end to end."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from robocl_envs.articulated import CabinetEnv, sample_cabinet
from test_drag import SMALL

from robocl.drag.model import DragPredictor
from robocl.drag.mpc import (
    DragMPC,
    LearnedDynamics,
    NearestPartDynamics,
    OpenTask,
    goal_points,
    run_episode,
    sample_open_task,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def env():
    e = CabinetEnv(image_size=(120, 120))
    yield e
    e.close()


def test_open_tasks_are_reachable():
    rng = np.random.default_rng(0)
    for seed in range(20):
        task = sample_open_task(sample_cabinet(seed, "cabinet"), rng)
        part = task.spec.parts[task.part - 1]
        assert 0 < task.target <= part.limit
        assert task.tol == (0.02 if part.kind == "drawer" else pytest.approx(np.radians(5)))


def test_goal_points_leave_the_state_alone(env):
    env.reset(options={"spec": sample_cabinet(0, "drawer_unit")})
    q = env.joint_state()
    goal = goal_points(env, 1, 0.2, 512, np.random.default_rng(0))
    assert len(goal) > 10 and np.array_equal(env.joint_state(), q)


def test_mppi_with_heuristic_dynamics_opens_a_drawer(env, tmp_path):
    spec = sample_cabinet(1, "drawer_unit")
    task = OpenTask(spec, 1, 0.15, 0.02)
    mpc = DragMPC(NearestPartDynamics(max_drag=0.35), population=24, iterations=2)
    png = tmp_path / "open.png"
    result = run_episode(env, task, mpc, max_steps=2, n_points=1024, render_to=png, label="test")
    assert result["success"] and result["kind"] == "drawer" and result["steps"] >= 1
    assert png.stat().st_size > 1000


def test_learned_dynamics_plans_a_handle_drag(env):
    torch.manual_seed(0)
    model = DragPredictor(SMALL).eval()
    env.reset(options={"spec": sample_cabinet(2, "cabinet")})
    rng = np.random.default_rng(0)
    cloud = env.point_cloud(512, rng)
    target = cloud.labels == 1
    goal = goal_points(env, 1, 0.1, 512, rng)
    handles = env.handle_mask(cloud)
    plan = DragMPC(LearnedDynamics(model, 0.3), population=8, iterations=2).plan(cloud, goal, target, handles)
    start, vec = plan.action[:3], plan.action[3:]
    assert np.linalg.norm(vec) <= 0.3 + 1e-6
    assert np.min(np.linalg.norm(cloud.points[handles] - start, axis=1)) < 1e-6  # grasps a handle point
    assert np.isfinite(plan.cost)


@pytest.mark.slow
def test_cabinet_drag_experiment_small(tmp_path):
    """The whole experiment at toy scale: data, two-stage training of both variants, metrics, MPC."""
    from robocl.experiments.cabinet_drag import run

    cfg = OmegaConf.load("configs/experiment/cabinet_drag.yaml")
    cfg = OmegaConf.merge(cfg, {
        "runtime": {"threads": 1, "cache_dir": str(tmp_path / "cache")},
        "drag": {"objects": 4, "heldout_objects": 2, "val_objects": 0, "states": 1, "drags": 4, "points": 1024,
                 "stage1_epochs": 1, "stage2_epochs": 1, "timing_repeats": 5,
                 "mpc": {"episodes": 2, "max_steps": 2, "population": 12, "iterations": 2, "renders": 1}}})
    out = run(cfg, tmp_path / "run")
    summary = out["summary"]
    assert set(summary) == {"drag_ms", "drag_global", "nearest_part", "rigid"}
    for method in summary:
        assert {"epe", "part_iou", "epe_category"} <= set(summary[method])
    assert "open_success" in summary["drag_ms"] and "infer_ms_median" in summary["drag_ms"]
    assert all(p.endswith(".png") for p in out["plots"]) and len(out["plots"]) >= 3
    for method in ("drag_ms", "drag_global", "nearest_part"):  # one row per drag-MPC episode
        rows = list(csv.DictReader((tmp_path / "run" / f"open_episodes_{method}_s0.csv").open()))
        assert [int(r["episode"]) for r in rows] == [0, 1] and {r["kind"] for r in rows} <= {"drawer", "door"}
        assert all(float(r["others_moved"]) >= 0 and int(r["steps"]) <= 2 for r in rows)
    assert set(out["ablation"]) == {f"{t}/{m}" for t in ("instance", "category")
                                    for m in ("epe", "part_iou", "axis_err_deg", "joint_type_ok")}
    assert (tmp_path / "run" / "ablation.md").exists()
    assert {"episodes", "a_only", "b_only", "p_value", "verdict"} <= set(out["open_paired"]["drag_ms"])
    json.dumps(out)  # plain JSON


@pytest.mark.slow
@pytest.mark.user_cache  # trained models from `robocl-run experiment=cabinet_drag`, when there
@pytest.mark.timeout(4 * 3600)  # ~8 min with both models cached; 1.5-3.5 h to train them on 2 cores
def test_cabinet_drag_acceptance(tmp_path):
    """Issue 7 on the default experiment (dataset and models from the user's cache when there):
    held-out part_iou >= 0.9; epe 3x below rigid and
    1.5x below nearest_part; the single-embedding ablation measurably worse (robocl.eval.paired);
    open_success >= 0.8 and above the heuristic; one drag on 2,048 points <= 20 ms."""
    from robocl.cli.app import compose
    from robocl.experiments.cabinet_drag import run

    cfg, _ = compose(["experiment=cabinet_drag", "runtime.progress=false"])
    out = run(cfg, tmp_path / "run")
    s = out["summary"]
    ms = s["drag_ms"]
    assert ms["part_iou"] >= 0.9
    assert 3 * ms["epe"] <= s["rigid"]["epe"] and 1.5 * ms["epe"] <= s["nearest_part"]["epe"]
    # the ablation worse on held-out instances: some metric's 95% interval over objects on the bad side, none better
    verdicts = {d["verdict"] for k, d in out["ablation"].items() if k.startswith("instance/")}
    assert "worse" in verdicts and "better" not in verdicts, out["ablation"]
    assert ms["open_success"] >= 0.8 and ms["open_success"] > s["nearest_part"]["open_success"]
    assert ms["infer_ms_median"] <= 20.0

