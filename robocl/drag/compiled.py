"""The drag predictor compiled for inference (`torch.compile`, inductor's CPU backend).

Why: a forward pass on 2,048 points is ~600 small tensor operations, and on a 2-core machine
about a third of its time is their dispatch (a 128-point cloud still takes ~8 ms eagerly).
Compiled, the whole pass is one graph (the interpolation and mask smoothing take their gather form,
`robocl.drag.ops.Stencil`) whose element-wise chains run as fused C++ loops. The cost is a
one-off compile per input shape (about a minute on 2 cores), so it serves fixed-shape
inference (one drag, a planner's fixed population), not training.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from robocl.drag.model import DragOutput, DragPredictor


@dataclass
class CompiledPredictor:
    """A compiled forward pass (or the eager model, with the reason, where compiling failed)."""

    forward: Callable[..., DragOutput]
    compiled: bool
    compile_s: float  # the first call (tracing + code generation), seconds
    reason: str = ""  # why it runs eagerly


RECOMPILE_LIMIT = 64


def compiled_forward(model: DragPredictor) -> Callable[..., DragOutput]:
    """`model` compiled for fixed input shapes (each new batch shape compiles once). Dynamo keeps
    its compiled graphs per code object, so every model and shape in a process counts toward
    one limit (8 by default, then it runs eagerly without saying so); it is raised to
    RECOMPILE_LIMIT: two variants x three shapes already need 6."""
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
    return torch.compile(model.eval(), dynamic=False)


def compile_predictor(model: DragPredictor, example: tuple[Tensor, ...]) -> CompiledPredictor:
    """Compile `model` (in eval mode) for inputs shaped like `example` (points, colors, start, vec)
    and run it once on them. A machine where inductor cannot build (no C++ compiler) gets the
    eager model back: compiling is an optimisation, never a requirement."""
    fn = compiled_forward(model)
    t0 = time.perf_counter()
    try:
        with torch.inference_mode():
            fn(*example)
    except Exception as err:  # noqa: BLE001 - any backend failure means: run eagerly
        return CompiledPredictor(model, False, 0.0, f"{type(err).__name__}: {str(err).splitlines()[0][:160]}")
    return CompiledPredictor(fn, True, time.perf_counter() - t0)
