"""Drag predictor benchmark: the compiled forward pass vs the eager one, same model, cloud and
threads, calls interleaved. Two workloads: one drag on a fresh cloud (neighbour search included;
the latency issue 7 asks for) and a planner's population of drags on one cloud's cached geometry
(what every MPPI iteration of the drag-MPC costs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from robocl.bench.timing import interleaved_times, ratio_summary, timing_row
from robocl.build import checks as check
from robocl.drag.compiled import compile_predictor
from robocl.drag.model import DragPredictor
from robocl.drag.train import load_checkpoint
from robocl.errors import UsageError


def _model(path: str | None) -> DragPredictor:
    if not path:
        torch.manual_seed(0)
        return DragPredictor().eval()
    if not Path(path).is_file():
        raise UsageError(f"suite.checkpoint={path!r}: no such file; give a drag checkpoint (.pt) or null")
    return load_checkpoint(Path(path))[0]


def _cloud(points: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A rendered cabinet: points, colours and whether each point is on a movable part."""
    from robocl_envs.articulated import CabinetEnv, sample_cabinet

    env = CabinetEnv()
    try:
        env.reset(options={"spec": sample_cabinet(seed, "cabinet")})
        cloud = env.point_cloud(points, np.random.default_rng(seed))
    finally:
        env.close()
    return (torch.as_tensor(cloud.points, dtype=torch.float32), torch.as_tensor(cloud.colors, dtype=torch.float32),
            torch.as_tensor(cloud.labels > 0))


def run(cfg: DictConfig, progress: Any) -> dict[str, Any]:
    points = check.number(cfg, "suite.points", lo=512, integer=True)
    population = check.number(cfg, "suite.population", lo=1, integer=True)
    seed = check.number(cfg, "suite.object_seed", lo=0, integer=True)
    population_repeats = check.number(cfg, "suite.population_repeats", lo=1, integer=True)
    model = _model(cfg.suite.checkpoint)
    pts, cols, on_part = _cloud(points, seed)
    rng = torch.Generator().manual_seed(seed)
    part_points = torch.nonzero(on_part)[:, 0]
    starts = pts[part_points[torch.randint(len(part_points), (population,), generator=rng)]]
    vecs = torch.randn(population, 3, generator=rng) * 0.1
    one = (pts[None], cols[None], starts[:1], vecs[:1])
    many = (pts[None], cols[None], starts, vecs)
    progress.log("compiling the drag predictor for both workloads (about a minute each on 2 cores)")
    fast = compile_predictor(model, one)
    if not fast.compiled:
        raise UsageError(f"torch.compile is not available here: {fast.reason}")
    with torch.inference_mode():
        geo = model.geometry(pts[None] - pts.mean(dim=0))
        fast.forward(*many, geometry=geo)  # the population shape compiles on its first call
    repeats, warmup = int(cfg.bench.repeats), int(cfg.bench.warmup)
    runs, ratios = [], {}
    workloads = (("one_drag", one, {}, repeats, warmup),
                 (f"P{population}_cached_geometry", many, {"geometry": geo}, population_repeats, 2))
    for label, args, kw, n, w in workloads:
        task = progress.add_task(label, total=n, status=f"{points} points")
        with torch.inference_mode():
            times = interleaved_times({"compiled": lambda a=args, k=kw: fast.forward(*a, **k),
                                       "eager": lambda a=args, k=kw: model(*a, **k)},
                                      n, w, lambda i, t=task: progress.update(t, completed=i))
        runs += [timing_row(f"{name}_{label}", label, ms, prefix="infer") for name, ms in times.items()]
        ratios |= {f"{label}_{k}": v for k, v in ratio_summary(times, "compiled").items()}
    notes = [f"compile (one drag): {fast.compile_s:.1f} s, once per process and input shape",
             f"threads {torch.get_num_threads()}; weights: {cfg.suite.checkpoint or 'fresh (seed 0)'}"]
    return {"runs": runs, "ratios": ratios, "notes": notes}
