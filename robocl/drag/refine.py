"""Bilateral mean-field refinement of the predicted moving-part mask (no learned weights).

Why: the network's mask bleeds one or two points across part boundaries (its false positives lie
a median 3.9 cm from the true part, about one point spacing, on held-out cabinets), and a
carcass and its fronts differ in colour. Averaging each point's moving probability over its
spatial neighbours of similar colour, a few times (a DenseCRF-style mean field), pulls those
boundary points toward the side they resemble. Held-out part_iou went from 0.823 to 0.855 on
cabinet_drag's 1,536 drags. The settings were chosen on 384 training drags, where it went from
0.853 to 0.886. Moving the refined mask rigidly (a hard gate instead of the trained soft one)
also took epe from 4.07 to 3.47 mm.

The neighbours are the network's own: each point's nearest first-level centre and that centre's
ball-query group (`Geometry.point_groups`), so no extra neighbour search is needed; the weights
depend on the cloud only and are shared by all the drags of one forward call.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from robocl.drag.ops import Stencil, gather, interpolate


@dataclass(frozen=True)
class MaskRefinement:
    iterations: int = 5  # mean-field steps (0 = no smoothing)
    recentre: int = 1  # re-estimates of the dragged part's code before the smoothing (DragPredictor._membership)
    sigma_xyz: float = 0.04  # m
    sigma_rgb: float = 0.1  # colour distance, channels in [0, 1]


DEFAULT_REFINEMENT = MaskRefinement()


def smoothing_stencil(xyz: Tensor, colors: Tensor, groups: Tensor, cfg: MaskRefinement) -> Stencil:
    """Row-normalized bilateral weights exp(-|dx|^2 / 2 sx^2 - |dc|^2 / 2 sc^2) over each point's
    neighbours `groups` (G,N,k) (built once per forward call; every mean-field step is then one
    product for all of its drags)."""
    feat = torch.cat([xyz / cfg.sigma_xyz, colors / cfg.sigma_rgb], dim=-1)
    w = torch.exp(-0.5 * (gather(feat, groups) - feat[:, :, None]).pow(2).sum(-1))
    w = w / w.sum(-1, keepdim=True).clamp_min(1e-12)
    return Stencil(groups, w.to(xyz.dtype), groups.shape[1])


def refine_probability(p: Tensor, stencil: Stencil, iterations: int) -> Tensor:
    """Mean field: p_i <- sum_j w_ij p_j, `iterations` times (p (B,N) in [0, 1])."""
    x = p[..., None]
    for _ in range(iterations):
        x = interpolate(stencil, x)
    return x[..., 0]
