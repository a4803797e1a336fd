"""The quadratic pull toward earlier weights that L2, EWC and SI share (and the drag predictor's
continual strategies reuse): written once, for any sequence of parameters."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def quadratic_anchor(params: Sequence[Tensor], anchor: Sequence[Tensor],
                     importance: Sequence[Tensor] | None = None) -> Tensor:
    """sum_i w_i (theta_i - theta*_i)^2 over all parameters; w = 1 (plain L2) without `importance`."""
    total = torch.zeros(())
    weights = importance if importance is not None else [None] * len(anchor)
    for p, a, w in zip(params, anchor, weights):
        sq = (p - a).pow(2)
        total = total + (sq if w is None else w * sq).sum()
    return total
