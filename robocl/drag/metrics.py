"""Drag prediction metrics: end-point error (mm), moving-part IoU, joint-axis angular error (deg)."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def epe(pred: Tensor, true: Tensor) -> float:
    """Mean end-point error in **mm** of displacements (..., N, 3) given in metres, over all points."""
    return float((pred - true).norm(dim=-1).mean()) * 1000.0


def part_iou_per_sample(pred: Tensor, true: Tensor) -> Tensor:
    """IoU of boolean masks (B, N) per sample; two empty masks (nothing moves, correctly) score 1."""
    pred, true = pred.bool(), true.bool()
    inter = (pred & true).sum(-1).float()
    union = (pred | true).sum(-1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def part_iou(pred: Tensor, true: Tensor) -> float:
    """Mean over samples of the moving-part mask IoU (see `part_iou_per_sample`)."""
    return float(part_iou_per_sample(pred.reshape(-1, pred.shape[-1]), true.reshape(-1, true.shape[-1])).mean())


def axis_angle_deg(pred: Tensor, true: Tensor) -> Tensor:
    """Angle in degrees between axes (B, 3), sign-invariant (an axis and its negation are equal)."""
    p = pred / pred.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    t = true / true.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    cos = (p * t).sum(-1).abs().clamp(max=1.0)
    return torch.rad2deg(torch.acos(cos))


def axis_error(pred: Tensor, true: Tensor) -> float:
    """Mean sign-invariant axis angle (degrees); NaN when there are no axes."""
    return float(axis_angle_deg(pred, true).mean()) if len(pred) else math.nan
