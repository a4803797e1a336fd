"""Planner benchmark: robocl MPPI vs pytorch_mppi (the usual PyTorch choice), same model and budget.

Both plan on the same GaussianEnsemble (TS over members), the same population, horizon and
waypoint cost, on the same thread budget; calls alternate so noise affects both equally.
"""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig

from robocl.bench.timing import interleaved_times, ratio_summary, timing_row
from robocl.build.models import make_model, model_path
from robocl.build.planners import mppi as build_mppi
from robocl.build.pretrained import pretrained_model
from robocl.planning.costs import WaypointCost


def _pytorch_mppi(model, cost: WaypointCost, cfg: DictConfig):
    try:
        from pytorch_mppi import MPPI as PeerMPPI
    except ImportError:
        return None
    low = torch.tensor(list(cfg.robot.action_low), dtype=torch.float32)
    high = torch.tensor(list(cfg.robot.action_high), dtype=torch.float32)
    sigma = torch.diag(torch.tensor(list(cfg.planner.noise_sigma), dtype=torch.float32) ** 2)
    goal = cost.goal

    def running_cost(states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return torch.linalg.vector_norm(states[:, :2] - goal, dim=-1)

    return PeerMPPI(model.step, running_cost, model.codec.state_dim, sigma,
                    num_samples=int(cfg.planner.population), horizon=int(cfg.planner.horizon),
                    lambda_=float(cfg.planner.temperature), u_min=low, u_max=high)


def run(cfg: DictConfig, progress) -> dict[str, Any]:
    # timing does not depend on the weights' values: fresh weights unless model=PATH names a trained model
    model = (pretrained_model(cfg, log=progress.log)[0] if model_path(cfg) is not None else make_model(cfg)).eval()
    cost = WaypointCost()
    cost.set_goal(torch.tensor([3.0, 1.0]))
    ours = build_mppi(cfg.planner, model.step, cost, cfg.robot, seed=0)
    state = torch.zeros(model.codec.state_dim)
    candidates = {"robocl_mppi": lambda: ours.plan(state)}
    notes = []
    peer = _pytorch_mppi(model, cost, cfg)
    if peer is not None:
        candidates["pytorch_mppi"] = lambda: peer.command(state)
    else:
        notes.append("pytorch_mppi is not installed (pip install pytorch-mppi); ran robocl alone")
    repeats, warmup = int(cfg.bench.repeats), int(cfg.bench.warmup)
    task = progress.add_task("planner", total=repeats, status=f"P={cfg.planner.population} H={cfg.planner.horizon}")
    with torch.inference_mode():
        times = interleaved_times(candidates, repeats, warmup, lambda i: progress.update(task, completed=i))
    label = f"P{cfg.planner.population}_H{cfg.planner.horizon}_E{cfg.dynamics.ensemble_size}"
    runs = [timing_row(name, label, ms) | {"control_hz": 1000.0 / float(ms.mean())} for name, ms in times.items()]
    return {"runs": runs, "ratios": ratio_summary(times, "robocl_mppi"), "notes": notes}
