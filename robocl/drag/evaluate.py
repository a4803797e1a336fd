"""Score a drag predictor on a dataset split: epe (mm), part_iou, joint axis error and type accuracy."""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from torch import Tensor

from robocl.drag.baselines import Predictor
from robocl.drag.dataset import DragSplit
from robocl.drag.metrics import axis_angle_deg, part_iou_per_sample
from robocl.drag.model import DragPredictor


def drag_scores(predict: Predictor, split: DragSplit, batch_size: int = 32) -> dict[str, Tensor]:
    """Per-drag scores (D,): epe (mm, mean over the cloud's points), the end-point error summed
    over the moving points (mm) and their count, part_iou, axis error (deg) and joint type
    correctness (NaN for drags not on a movable part), and the object each drag is on."""
    out: dict[str, list[Tensor]] = {k: [] for k in ("epe", "moving_err_sum", "moving", "part_iou", "axis_err_deg",
                                                      "joint_type_ok", "object")}
    for first in range(0, len(split), batch_size):
        idx = torch.arange(first, min(first + batch_size, len(split)))
        batch = split.batch(idx)
        pred = predict(batch)
        err = (pred.displacement - batch["displacement"]).norm(dim=-1) * 1000.0
        out["epe"].append(err.mean(dim=-1))
        out["moving_err_sum"].append((err * batch["moving"]).sum(dim=-1))
        out["moving"].append(batch["moving"].sum(dim=-1).float())
        out["part_iou"].append(part_iou_per_sample(pred.moving, batch["moving"]))
        has = batch["joint_type"] >= 0
        nan = torch.full((len(idx),), math.nan)
        out["axis_err_deg"].append(torch.where(has, axis_angle_deg(pred.axis, batch["axis"]), nan))
        out["joint_type_ok"].append(torch.where(has, (pred.joint_type == batch["joint_type"]).float(), nan))
        out["object"].append(split.object[split.state[idx]])
    return {k: torch.cat(v) for k, v in out.items()}


def summarize_scores(scores: dict[str, Tensor]) -> dict[str, float]:
    """Means over all drags (epe over all points, epe_moving over all moving points, axis/type over
    drags on a movable part)."""
    has = ~scores["axis_err_deg"].isnan()
    return {
        "epe": float(scores["epe"].mean()),
        "epe_moving": float(scores["moving_err_sum"].sum() / scores["moving"].sum().clamp_min(1)),
        "part_iou": float(scores["part_iou"].mean()),
        "axis_err_deg": float(scores["axis_err_deg"][has].mean()) if has.any() else math.nan,
        "joint_type_acc": float(scores["joint_type_ok"][has].mean()) if has.any() else math.nan,
        "drags": len(scores["epe"]),
    }


def evaluate(predict: Predictor, split: DragSplit, batch_size: int = 32) -> dict[str, float]:
    """Means over all drags of the split (see `summarize_scores`)."""
    return summarize_scores(drag_scores(predict, split, batch_size))


def inference_timing(model: DragPredictor, points: torch.Tensor, colors: torch.Tensor, start: torch.Tensor,
                     vec: torch.Tensor, repeats: int = 100, warmup: int = 10) -> dict[str, float]:
    """Median and p95 wall time (ms) of one forward pass (one cloud, one drag) in inference mode."""
    model.eval()
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            t = time.perf_counter()
            model(points[None], colors[None], start[None], vec[None])
            if i >= warmup:
                times.append((time.perf_counter() - t) * 1000.0)
    return {"infer_ms_median": float(np.median(times)), "infer_ms_p95": float(np.quantile(times, 0.95)),
            "threads": torch.get_num_threads(), "points": int(points.shape[0])}
