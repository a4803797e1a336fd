"""Score a drag predictor on a dataset split: epe (mm), part_iou, joint axis error and type accuracy."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch
from torch import Tensor

from robocl.bench.timing import interleaved_times
from robocl.drag.baselines import Predictor
from robocl.drag.compiled import compile_predictor
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


SIZE_EDGES = (0, 50, 100, 200, 400)  # true moving points per drag: where the mask is weak (small drawers)


def iou_by_size(scores: dict[str, Tensor], edges: tuple[int, ...] = SIZE_EDGES) -> list[dict[str, Any]]:
    """Mean `part_iou` of the drags binned by their true moving-point count: [edges[i], edges[i+1]), the last
    bin open; a drag that moves nothing is in the first. Empty bins are left out."""
    moving, iou = scores["moving"], scores["part_iou"]
    bounds = [*edges, math.inf]
    rows = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        sel = (moving >= lo) & (moving < hi)
        if sel.any():
            rows.append({"moving_points": f"{lo}-{hi - 1}" if hi != math.inf else f"{lo}+", "drags": int(sel.sum()),
                         "part_iou": float(iou[sel].mean())})
    return rows


def evaluate(predict: Predictor, split: DragSplit, batch_size: int = 32) -> dict[str, float]:
    """Means over all drags of the split (see `summarize_scores`)."""
    return summarize_scores(drag_scores(predict, split, batch_size))


def inference_timing(model: DragPredictor, points: torch.Tensor, colors: torch.Tensor, start: torch.Tensor,
                     vec: torch.Tensor, repeats: int = 100, warmup: int = 10,
                     use_compile: bool = True) -> dict[str, float]:
    """Wall time (ms, median and p95) of one forward pass (one cloud, one drag) in inference mode:
    compiled (`robocl.drag.compiled`, the deployed path; `infer_ms_*`) and eager
    (`infer_ms_eager_*`), interleaved call by call so that machine noise hits both alike. Also the
    one-off compile time (s) and the largest difference between the two paths' moving logits (a
    compiled pass must give the same answer)."""
    model.eval()
    args = (points[None], colors[None], start[None], vec[None])
    out: dict[str, float] = {"threads": torch.get_num_threads(), "points": int(points.shape[0])}
    candidates = {"eager": lambda: model(*args)}
    if use_compile:
        compiled = compile_predictor(model, args)
        out["compiled"] = float(compiled.compiled)
        if compiled.compiled:
            candidates["compiled"] = lambda: compiled.forward(*args)
            out["compile_s"] = compiled.compile_s
            with torch.inference_mode():
                diff = (compiled.forward(*args).moving_logit - model(*args).moving_logit).abs().max()
            out["compiled_logit_diff"] = float(diff)
        else:
            warnings.warn(f"drag predictor timed eagerly: torch.compile failed ({compiled.reason})", stacklevel=2)
    with torch.inference_mode():
        times = interleaved_times(candidates, repeats, warmup)
    deployed = times.get("compiled", times["eager"])
    out |= {"infer_ms_median": float(np.median(deployed)), "infer_ms_p95": float(np.quantile(deployed, 0.95)),
            "infer_ms_eager_median": float(np.median(times["eager"])),
            "infer_ms_eager_p95": float(np.quantile(times["eager"], 0.95))}
    return out
