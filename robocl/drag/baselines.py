"""Drag predictors behind one interface: the learned model and the two heuristic baselines.

Every predictor maps a batch (points, colors, labels, start, vec; see robocl.drag.dataset) to a
`Prediction`. `labels` is the segmentation the renderer gives; only the nearest-part heuristic
reads it (the learned model sees geometry and colour only).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from robocl.drag.model import DragPredictor

PRISMATIC = 0


@dataclass
class Prediction:
    displacement: Tensor  # (B,N,3) m
    moving: Tensor  # (B,N) bool
    joint_type: Tensor  # (B,) 0 prismatic, 1 revolute
    axis: Tensor  # (B,3)


Predictor = Callable[[dict[str, Tensor]], Prediction]


def _drag_axis(vec: Tensor) -> Tensor:
    return vec / vec.norm(dim=-1, keepdim=True).clamp_min(1e-9)


def rigid(batch: dict[str, Tensor]) -> Prediction:
    """The whole object moves with the drag (every point translates by the drag vector)."""
    pts, vec = batch["points"], batch["vec"]
    b = len(vec)
    return Prediction(vec[:, None].expand_as(pts).clone(), torch.ones(pts.shape[:2], dtype=torch.bool),
                      torch.full((b,), PRISMATIC), _drag_axis(vec))


def nearest_part(batch: dict[str, Tensor]) -> Prediction:
    """The segment under the drag (label of the nearest point) translates by the drag vector;
    a drag on the static body (label 0) moves nothing."""
    pts, vec, labels = batch["points"], batch["vec"], batch["labels"]
    nearest = (pts - batch["start"][:, None]).norm(dim=-1).argmin(dim=1)
    part = labels.gather(1, nearest[:, None])  # (B,1)
    moving = (labels == part) & (part > 0)
    disp = moving[..., None].float() * vec[:, None]
    return Prediction(disp, moving, torch.full((len(vec),), PRISMATIC), _drag_axis(vec))


def learned(model: DragPredictor) -> Predictor:
    """The drag model as a predictor (moving mask from its segmentation head)."""

    def predict(batch: dict[str, Tensor]) -> Prediction:
        with torch.inference_mode():
            out = model(batch["points"], batch["colors"], batch["start"], batch["vec"],
                        neighbors=batch.get("neighbors"))
        return Prediction(out.displacement, out.moving(), out.joint_type(), out.axis)

    return predict
