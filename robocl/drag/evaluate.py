"""Score a drag predictor on a dataset split: epe (mm), part_iou, joint axis error and type accuracy."""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from robocl.drag.baselines import Predictor
from robocl.drag.dataset import DragSplit
from robocl.drag.metrics import axis_angle_deg, part_iou_per_sample
from robocl.drag.model import DragPredictor


def evaluate(predict: Predictor, split: DragSplit, batch_size: int = 32) -> dict[str, float]:
    """Means over all drags of the split (epe over all points; axis/type over drags on a part)."""
    err_sum, n_pts = 0.0, 0
    mov_err, n_mov = 0.0, 0
    ious, angles, type_ok = [], [], []
    for first in range(0, len(split), batch_size):
        idx = torch.arange(first, min(first + batch_size, len(split)))
        batch = split.batch(idx)
        pred = predict(batch)
        err = (pred.displacement - batch["displacement"]).norm(dim=-1)
        err_sum += float(err.sum())
        n_pts += err.numel()
        mov_err += float((err * batch["moving"]).sum())
        n_mov += int(batch["moving"].sum())
        ious.append(part_iou_per_sample(pred.moving, batch["moving"]))
        has = batch["joint_type"] >= 0
        angles.append(axis_angle_deg(pred.axis[has], batch["axis"][has]))
        type_ok.append(pred.joint_type[has] == batch["joint_type"][has])
    angle = torch.cat(angles)
    return {
        "epe": err_sum / max(n_pts, 1) * 1000.0,
        "epe_moving": mov_err / max(n_mov, 1) * 1000.0,
        "part_iou": float(torch.cat(ious).mean()),
        "axis_err_deg": float(angle.mean()) if len(angle) else math.nan,
        "joint_type_acc": float(torch.cat(type_ok).float().mean()) if len(angle) else math.nan,
        "drags": len(split),
    }


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
