"""Drag-MPC: choose where and how to drag an articulated object with MPPI over a drag predictor.

An action is a drag: a start point (snapped to the nearest observed *handle* point: the
point-contact gripper grasps handles) and a 3-D vector (norm capped at `max_drag`). The state
is the observed point cloud (flattened); the dynamics model maps (cloud, drags) to predicted
clouds, so the planner is `robocl.planning.mppi.MPPI` unchanged with horizon 1: each control
step observes, plans one drag, executes it with the physical gripper and observes again (receding horizon).

The task "open part k to q*" is given as a goal observation: the target part's points observed
at the target opening (an unordered set, as from a goal image). The planner sees the cloud and
the renderer's segmentation (which points are the target part, which are handles) but no joint;
the cost is a symmetric Chamfer distance between the predicted target points and the goal points
(the goal-to-prediction side trimmed to its best-matched 60%: opening reveals surfaces no current
point can reach) plus a penalty on predicted motion of everything else. (With per-point goal positions
instead, "drag the grasped point to its goal" is optimal for any model that moves the grasped
point with the drag, and the comparison would say nothing about the dynamics model.)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from robocl_envs.articulated import PRISMATIC, CabinetEnv, CabinetSpec
from robocl_envs.pointcloud import PointCloud
from torch import Tensor

from robocl.drag.model import DragOutput, DragPredictor, Geometry
from robocl.planning.mppi import MPPI


class CloudDynamics:
    """Predicted clouds after drags on the current cloud (set with `set_cloud`)."""

    def __init__(self, max_drag: float = 0.3) -> None:
        self.max_drag = max_drag
        self.points = torch.zeros(0, 3)

    def set_cloud(self, cloud: PointCloud, graspable: np.ndarray | None = None) -> None:
        self.points = torch.as_tensor(cloud.points, dtype=torch.float32)
        self.colors = torch.as_tensor(cloud.colors, dtype=torch.float32) / 255.0
        self.labels = torch.as_tensor(cloud.labels, dtype=torch.long)
        grasp = torch.as_tensor(graspable, dtype=torch.bool) if graspable is not None else None
        self.grasp_points = self.points[grasp] if grasp is not None and grasp.any() else self.points

    def snap(self, actions: Tensor) -> tuple[Tensor, Tensor]:
        """Start on the nearest graspable observed point; drag norm capped at `max_drag`."""
        idx = torch.cdist(actions[:, :3], self.grasp_points).argmin(dim=1)
        vec = actions[:, 3:6]
        norm = vec.norm(dim=-1, keepdim=True).clamp_min(1e-9)
        return self.grasp_points[idx], vec * torch.clamp(self.max_drag / norm, max=1.0)

    def displacement(self, starts: Tensor, vecs: Tensor) -> Tensor:
        raise NotImplementedError

    def __call__(self, states: Tensor, actions: Tensor) -> Tensor:
        """MPPI dynamics: every state row is the observed cloud (horizon 1), actions (P,6)."""
        starts, vecs = self.snap(actions)
        disp = self.displacement(starts, vecs)
        return (self.points + disp).reshape(len(actions), -1)


class LearnedDynamics(CloudDynamics):
    """The drag predictor; the cloud's geometry is computed once per observation. `forward` runs
    the population's drags: the model itself, or its `torch.compile`d form (about 2x faster on a
    48-drag population, one compile per batch shape)."""

    def __init__(self, model: DragPredictor, max_drag: float = 0.3,
                 forward: Callable[..., DragOutput] | None = None) -> None:
        super().__init__(max_drag)
        self.model = model.eval()
        self.forward = forward if forward is not None else self.model
        self.geo: Geometry | None = None

    def set_cloud(self, cloud: PointCloud, graspable: np.ndarray | None = None) -> None:
        super().set_cloud(cloud, graspable)
        pts = self.points[None]
        with torch.inference_mode():
            self.geo = self.model.geometry(pts - pts.mean(dim=1, keepdim=True))

    def displacement(self, starts: Tensor, vecs: Tensor) -> Tensor:
        with torch.inference_mode():
            return self.forward(self.points[None], self.colors[None], starts, vecs, geometry=self.geo).displacement


class NearestPartDynamics(CloudDynamics):
    """Heuristic: the segment under the drag translates by the drag vector (static body: nothing)."""

    def displacement(self, starts: Tensor, vecs: Tensor) -> Tensor:
        part = self.labels[torch.cdist(starts, self.points).argmin(dim=1)]
        moving = (self.labels[None] == part[:, None]) & (part[:, None] > 0)
        return moving[..., None].float() * vecs[:, None]


@dataclass
class Plan:
    action: np.ndarray  # (6,) snapped start + capped vector, world frame
    cost: float  # predicted cost of that drag (cm)
    plan_ms: float


class DragMPC:
    """MPPI over one drag per control step, tracking the best drag it evaluates."""

    def __init__(self, dynamics: CloudDynamics, population: int = 48, iterations: int = 4,
                 sigma_start: float = 0.1, sigma_drag: float = 0.08, temperature: float = 0.5,
                 other_weight: float = 3.0, trim: float = 0.6, seed: int = 0) -> None:
        self.dynamics = dynamics
        self.population = population
        self.iterations = iterations
        self.sigma = [sigma_start] * 3 + [sigma_drag] * 3
        self.temperature = temperature
        self.other_weight = other_weight
        self.trim = trim
        self.seed = seed
        self.calls = 0

    def plan(self, cloud: PointCloud, goal: np.ndarray, target: np.ndarray, graspable: np.ndarray) -> Plan:
        """One drag toward `goal` (M,3 points of the target at the goal), `target` (N,) its points now."""
        t0 = time.perf_counter()
        dyn = self.dynamics
        dyn.set_cloud(cloud, graspable)
        pts = dyn.points
        goal_t = torch.as_tensor(goal, dtype=torch.float32)
        mask = torch.as_tensor(target, dtype=torch.bool)
        best: dict[str, Any] = {"cost": float("inf"), "action": None}

        def cost(states: Tensor, actions: Tensor) -> Tensor:
            final = states[:, -1].view(len(states), -1, 3)
            d = torch.cdist(final[:, mask], goal_t[None].expand(len(final), -1, -1))
            to_goal = d.min(dim=2).values.mean(dim=1)
            # goal -> prediction, trimmed: opening reveals surfaces (a drawer's inside) that no point
            # of the current observation can reach, so only the best-matched share counts
            from_goal = d.min(dim=1).values
            k = max(1, int(self.trim * from_goal.shape[1]))
            chamfer = 0.5 * (to_goal + from_goal.topk(k, dim=1, largest=False).values.mean(dim=1))
            other = (final[:, ~mask] - pts[~mask]).norm(dim=-1).mean(dim=1) if (~mask).any() else 0.0
            c = 100.0 * (chamfer + self.other_weight * other) + 0.5 * actions[:, 0, 3:].norm(dim=-1)
            i = int(torch.argmin(c))
            if float(c[i]) < best["cost"]:
                best.update(cost=float(c[i]), action=actions[i, 0].clone())
            return c

        m = dyn.max_drag
        low = torch.cat([pts.min(dim=0).values - 0.05, torch.full((3,), -m)])
        high = torch.cat([pts.max(dim=0).values + 0.05, torch.full((3,), m)])
        planner = MPPI(dyn, cost, low.tolist(), high.tolist(), horizon=1, population=self.population,
                       iterations=self.iterations, noise_sigma=self.sigma, seed=self.seed + self.calls,
                       temperature=self.temperature)
        self.calls += 1
        # warm start: grasp the target's handle, drag by the shift between target and goal centroids
        handle = mask & torch.as_tensor(graspable, dtype=torch.bool)
        grip = pts[handle].mean(dim=0) if handle.any() else pts[mask].mean(dim=0)
        planner.mean = torch.cat([grip, goal_t.mean(dim=0) - pts[mask].mean(dim=0)])[None].clone()
        mean_action = planner.plan(pts.reshape(-1))
        with torch.inference_mode():
            cost(dyn(pts.reshape(1, -1), mean_action[None])[:, None], mean_action[None, None])
        start, vec = dyn.snap(best["action"][None])
        action = torch.cat([start[0], vec[0]]).numpy().astype(np.float64)
        return Plan(action, best["cost"], (time.perf_counter() - t0) * 1000.0)


@dataclass(frozen=True)
class OpenTask:
    """Open part `part` of cabinet `spec` from closed to `target` (m or rad) within `tol`."""

    spec: CabinetSpec
    part: int
    target: float
    tol: float


def sample_open_task(spec: CabinetSpec, rng: np.random.Generator, max_drag: float = 0.35, drags: int = 3,
                     drawer_tol: float = 0.02, door_tol: float = math.radians(5.0)) -> OpenTask:
    """A random part; drawers to 40-80% of their travel, doors to 30-60 degrees, always reachable
    within `drags` handle drags of at most `max_drag` (a drag turns a door by <= asin(L / r))."""
    k = int(rng.integers(len(spec.parts))) + 1
    part = spec.parts[k - 1]
    if part.joint_type == PRISMATIC:
        return OpenTask(spec, k, float(rng.uniform(0.4, 0.8) * min(part.limit, drags * max_drag)), drawer_tol)
    radius = part.size[0] - 0.05  # hinge to handle
    reach = 0.8 * drags * math.asin(min(1.0, max_drag / radius))
    return OpenTask(spec, k, float(min(rng.uniform(math.radians(30), math.radians(60)), reach, 0.9 * part.limit)),
                    door_tol)


def goal_points(env: CabinetEnv, part: int, target: float, n_points: int, rng: np.random.Generator) -> np.ndarray:
    """The goal observation: the target part's observed points with its joint at `target`."""
    q = env.joint_state()
    goal = q.copy()
    goal[part - 1] = target
    env.set_state(goal)
    cloud = env.point_cloud(n_points, rng)
    env.set_state(q)
    return cloud.points[cloud.labels == part]


def run_episode(env: CabinetEnv, task: OpenTask, mpc: DragMPC, max_steps: int = 3, n_points: int = 2048,
                seed: int = 0, render_to: Path | None = None, label: str = "") -> dict[str, Any]:
    """Closed-loop opening from closed: observe, plan a drag, execute it physically, repeat until
    within tolerance or out of drags. Success: the target within tolerance, no other part moved."""
    rng = np.random.default_rng(seed)
    env.reset(options={"spec": task.spec})
    before = env.render(show_gripper=False) if render_to is not None else None
    k = task.part - 1
    goal = goal_points(env, task.part, task.target, n_points, rng)
    plan_ms: list[float] = []
    steps = 0
    solved_at: int | None = None  # drags after which the target was first within tolerance

    def others_moved(q: np.ndarray) -> float:
        """The largest displacement of any joint but the target's (from closed)."""
        return float(np.delete(np.abs(q), k).max(initial=0.0))

    def solved() -> bool:
        q = env.joint_state()
        return bool(abs(q[k] - task.target) <= task.tol and others_moved(q) <= 0.02)

    for _ in range(max_steps):
        if solved():
            solved_at = steps
            break
        cloud = env.point_cloud(n_points, rng)
        target = cloud.labels == task.part
        if not target.any():
            break
        plan = mpc.plan(cloud, goal, target, env.handle_mask(cloud))
        plan_ms.append(plan.plan_ms)
        env.step(plan.action)
        steps += 1
    q = env.joint_state()
    error = abs(q[k] - task.target)
    success = solved()
    if success and solved_at is None:
        solved_at = steps
    if render_to is not None:
        unit = "m" if task.spec.parts[k].kind == "drawer" else "rad"
        save_before_after(render_to, before, env.render(), f"{label}: {'success' if success else 'fail'}, "
                          f"error {error:.3f} {unit} after {steps} drag(s)")
    return {"success": success, "error": float(error), "steps": steps, "solved_at": solved_at,
            "kind": task.spec.parts[k].kind, "others_moved": others_moved(q),
            "target": task.target, "plan_ms_median": float(np.median(plan_ms)) if plan_ms else 0.0}


def save_before_after(path: Path, before: np.ndarray, after: np.ndarray, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(6.4, 3.4))
    for ax, img, name in zip(axes, (before, after), ("before", "after")):
        ax.imshow(img)
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
