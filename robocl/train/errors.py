"""Validation errors of a dynamics model on recorded segments, by prediction horizon.

Errors are normalized like `dyn_mse` everywhere in robocl: squared codec-target error divided by a
reference target std (the trained model's, so the trained and the simulator model are measured
on one scale), averaged over target dimensions. The k-step error rolls the model open loop
under the recorded commands from every start that has k more transitions in its segment.
"""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import torch

from robocl.dynamics.base import DynamicsModel
from robocl.offline.dataset import Segment
from robocl.offline.evaluate import mean_prediction, target_errors


def horizon_errors(model: DynamicsModel, scale: torch.Tensor, segments: list[Segment], horizon: int,
                   tasks: list[int] | None = None) -> np.ndarray:
    """(horizon,) mean error of the k-step prediction, k = 1..horizon (NaN where no segment is long enough).
    `tasks`: a multi-task model (HyperNetwork) predicts segment i with embedding tasks[i]."""
    sums = np.zeros(horizon)
    counts = np.zeros(horizon)
    with torch.inference_mode():
        for i, seg in enumerate(segments):
            with model.using_task(tasks[i]) if tasks is not None else nullcontext():
                _accumulate(model, scale, seg, horizon, sums, counts)
    with np.errstate(invalid="ignore"):
        return sums / counts


def _accumulate(model: DynamicsModel, scale: torch.Tensor, seg: Segment, horizon: int, sums: np.ndarray,
                counts: np.ndarray) -> None:
    S = torch.as_tensor(seg.states, dtype=torch.float32)
    A = torch.as_tensor(seg.actions, dtype=torch.float32)
    L = A.shape[0]
    starts = torch.arange(L)
    x = S[:-1]
    for k in range(1, min(horizon, L) + 1):
        valid = starts + k <= L
        starts, x = starts[valid], x[valid]
        x = mean_prediction(model, x, A[starts + k - 1])
        # as robocl-eval's kstep_mse: codec target from the start state, predicted vs recorded
        err = target_errors(model, scale, S[starts], x, S[starts + k])
        sums[k - 1] += float(err.sum())
        counts[k - 1] += err.numel()

