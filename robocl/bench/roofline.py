"""How far a plan is from the machine's limit: the matmul peak measured here, the FLOPs a plan's model
evaluations cost, and the achieved fraction of that peak.

Plain values only: the planner bench (robocl.experiments.bench_planner) measures and reports.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path

import torch


def matmul_peak_gflops(dtype: torch.dtype = torch.float32, size: int = 1024, seconds: float = 0.25,
                       min_calls: int = 3) -> float:
    """The best GFLOP/s of a (size x size) @ (size x size) matmul of `dtype` on the current torch
    thread count: calls are repeated for about `seconds` (at least `min_calls`) and the fastest counts."""
    if size < 1:
        raise ValueError("size must be >= 1")
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=gen).to(dtype)
    b = torch.randn(size, size, generator=gen).to(dtype)
    out = torch.empty(size, size, dtype=dtype)
    torch.mm(a, b, out=out)  # warm-up: first-call allocation and kernel selection
    best, calls, start = math.inf, 0, time.perf_counter()
    while calls < min_calls or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
        calls += 1
    return 2.0 * size**3 / best / 1e9


def mlp_plan_flops(layer_shapes: Sequence[tuple[int, int]], population: int, horizon: int,
                   iterations: int = 1, members: int = 1) -> int:
    """Matmul FLOPs (a multiply-add counts 2) of the model evaluations in one plan.

    `layer_shapes`: (in, out) of each linear layer of one member, as the planner evaluates it. Each of
    the `iterations` x `horizon` rollout steps sends the `population` particles through the ensemble
    split over its `members` (trajectory sampling: every particle follows one member), each member
    taking ceil(population / members) rows, so a step costs members x ceil(P / E) x sum(in x out) x 2.
    """
    if min(population, horizon, iterations, members) < 1:
        raise ValueError("population, horizon, iterations and members must be >= 1")
    rows_per_member = -(-population // members)
    per_row = sum(int(i) * int(o) for i, o in layer_shapes)
    return 2 * iterations * horizon * members * rows_per_member * per_row


def ensemble_layer_shapes(model) -> list[tuple[int, int]]:
    """(in, out) of each layer one member of a `GaussianEnsemble` runs in planning (its `step`): the hidden
    layers, then the head's mean columns only (planning skips the log-variance half)."""
    hidden = getattr(model, "hidden", None)
    head = getattr(model, "head", None)
    if hidden is None or head is None or not hasattr(model, "ensemble_size"):
        raise ValueError(f"{type(model).__name__} is not a GaussianEnsemble: its plan FLOPs are not counted")
    shapes = [(int(layer.weight.shape[-2]), int(layer.weight.shape[-1])) for layer in hidden]
    return shapes + [(int(head.weight.shape[-2]), int(model.codec.target_dim))]


def achieved(flops: int, ms: float, fp32_peak: float, bf16_peak: float | None = None) -> dict[str, float]:
    """GFLOP/s at `ms` per plan and its fraction of the measured peaks."""
    gflops = flops / (ms * 1e-3) / 1e9
    out = {"flops_per_plan": float(flops), "gflops": gflops, "frac_fp32_peak": gflops / fp32_peak}
    if bf16_peak:
        out["frac_bf16_peak"] = gflops / bf16_peak
    return out


def plot_roofline(points: Sequence[dict], peaks: dict[str, float], path: Path, title: str = "") -> Path:
    """Achieved GFLOP/s against population, one line per horizon, the measured peaks as horizontal lines.
    `points`: dicts with population, horizon, gflops; `peaks`: label -> GFLOP/s."""
    from robocl.eval.plots import plt, save_figure

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for horizon in sorted({int(p["horizon"]) for p in points}):
        row = sorted((int(p["population"]), float(p["gflops"])) for p in points if int(p["horizon"]) == horizon)
        ax.plot([r[0] for r in row], [r[1] for r in row], "o-", label=f"robocl MPPI, horizon {horizon}")
    for (label, value), style in zip(peaks.items(), ("-", "--", ":", "-.")):
        ax.axhline(value, color="0.3", ls=style, lw=1.0, label=f"{label} matmul peak {value:.0f} GFLOP/s")
    ax.set_xscale("log")
    ax.set_xlabel("population (sampled action sequences)")
    ax.set_ylabel("achieved GFLOP/s (model matmuls)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center right")
    if title:
        ax.set_title(title, fontsize=9)
    return save_figure(fig, Path(path))
