"""Continual-learning metrics over an accuracy matrix, the stability gap, and their reports.

R[i][j] is the performance on task j after training task i (T x T). Every metric takes
`higher_is_better`: accuracies (success rate, R^2) use True; errors (MSE) use False, and the
metrics keep their usual meaning ("forgetting > 0 means worse on old tasks", "bwt < 0 means
old tasks got worse") in both cases.

Definitions (T tasks, 0-indexed, final row T-1):
- average accuracy: mean_j R[T-1][j].
- forgetting (Chaudhry et al. 2018): mean over j < T-1 of the drop from the best value
  reached after learning j (rows j..T-2) to the final value.
- backward transfer (Lopez-Paz & Ranzato 2017): mean over j < T-1 of R[T-1][j] - R[j][j].
- forward transfer: mean over j >= 1 of R[j-1][j] - b[j], b = a model before any training.
- stability gap (De Lange et al. 2023), from continual evaluation every N iterations:
  min-ACC_k = mean over old tasks i < k of the worst value of task i at any evaluation after
  task i was learned, up to the end of task k; WC-ACC_k = 1/k A(task k at the end of task k)
  + (1 - 1/k) min-ACC_k (k counts tasks from 1). Reported for the final task.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robocl.eval.markdown import markdown_table

Matrix = Sequence[Sequence[float]]


def _as_matrix(R: Matrix) -> np.ndarray:
    m = np.asarray(R, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] < 1:
        raise ValueError(f"accuracy matrix must be square T x T with T >= 1, got shape {m.shape}")
    return m


def _sign(higher_is_better: bool) -> float:
    return 1.0 if higher_is_better else -1.0


def average_accuracy(R: Matrix) -> float:
    """Mean performance over all tasks after the last one (lower is better for errors)."""
    m = _as_matrix(R)
    return float(m[-1].mean())


def forgetting(R: Matrix, higher_is_better: bool = True) -> float | None:
    """Mean drop from each old task's best value (after it was learned) to its final value."""
    m = _as_matrix(R)
    t = m.shape[0]
    if t < 2:
        return None
    drops = []
    for j in range(t - 1):
        col = m[j: t - 1, j]
        best = col.max() if higher_is_better else col.min()
        drops.append(_sign(higher_is_better) * (best - m[t - 1, j]))
    return float(np.mean(drops))


def backward_transfer(R: Matrix, higher_is_better: bool = True) -> float | None:
    """Mean change of old tasks from just after learning them to the end (< 0: they got worse)."""
    m = _as_matrix(R)
    t = m.shape[0]
    if t < 2:
        return None
    return float(_sign(higher_is_better) * np.mean([m[t - 1, j] - m[j, j] for j in range(t - 1)]))


def forward_transfer(R: Matrix, baseline: Sequence[float], higher_is_better: bool = True) -> float | None:
    """Mean head start on task j from tasks < j, relative to an untrained model's `baseline[j]`."""
    m = _as_matrix(R)
    t = m.shape[0]
    if t < 2:
        return None
    b = np.asarray(baseline, dtype=float)
    return float(_sign(higher_is_better) * np.mean([m[j - 1, j] - b[j] for j in range(1, t)]))


@dataclass
class ContinualCurve:
    """Continual evaluation: values of every task at evaluation iterations, and task boundaries.

    iterations[n] is the training iteration of evaluation n; values[n][j] the value on task j.
    task_ends[k] is the iteration at which training of task k finished (an evaluation is taken
    there too).
    """

    iterations: list[int] = field(default_factory=list)
    values: list[list[float]] = field(default_factory=list)
    task_ends: list[int] = field(default_factory=list)

    def add(self, iteration: int, values: Sequence[float]) -> None:
        self.iterations.append(int(iteration))
        self.values.append([float(v) for v in values])

    def to_dict(self) -> dict[str, Any]:
        return {"iterations": self.iterations, "values": self.values, "task_ends": self.task_ends}


def min_accuracy(curve: ContinualCurve, higher_is_better: bool = True, k: int | None = None) -> float | None:
    """min-ACC after task k (default the last): mean over i < k of task i's worst value in (end_i, end_k]."""
    ends = curve.task_ends
    k = len(ends) - 1 if k is None else k
    if k < 1:
        return None
    it = np.asarray(curve.iterations)
    vals = np.asarray(curve.values, dtype=float)
    worst = np.min if higher_is_better else np.max
    per_task = []
    for i in range(k):
        sel = (it > ends[i]) & (it <= ends[k])
        if not sel.any():
            continue
        per_task.append(worst(vals[sel, i]))
    return float(np.mean(per_task)) if per_task else None


def worst_case_accuracy(curve: ContinualCurve, higher_is_better: bool = True, k: int | None = None) -> float | None:
    """WC-ACC after task k: 1/(k+1) * A(task k at end_k) + (1 - 1/(k+1)) * min-ACC_k (0-indexed k)."""
    ends = curve.task_ends
    k = len(ends) - 1 if k is None else k
    if k < 0:
        return None
    it = np.asarray(curve.iterations)
    at_end = np.flatnonzero(it == ends[k])
    if not len(at_end):
        return None
    current = float(np.asarray(curve.values, dtype=float)[at_end[-1], k])
    n = k + 1
    min_acc = min_accuracy(curve, higher_is_better, k)
    if min_acc is None:
        return current
    return current / n + (1.0 - 1.0 / n) * min_acc


def summarize_matrix(R: Matrix, higher_is_better: bool = True, baseline: Sequence[float] | None = None,
                     curve: ContinualCurve | None = None, prefix: str = "") -> dict[str, float | None]:
    """All metrics of one accuracy matrix (and its curve) under metric names with an optional prefix."""
    out = {
        "avg_acc": average_accuracy(R),
        "forgetting": forgetting(R, higher_is_better),
        "bwt": backward_transfer(R, higher_is_better),
    }
    if baseline is not None:
        out["fwt"] = forward_transfer(R, baseline, higher_is_better)
    if curve is not None:
        out["min_acc"] = min_accuracy(curve, higher_is_better)
        out["wc_acc"] = worst_case_accuracy(curve, higher_is_better)
    return {f"{prefix}{k}": v for k, v in out.items()}


# ---- reports ---------------------------------------------------------------------------------
def markdown_matrix(R: Matrix, task_names: Sequence[str], title: str = "", fmt: str = "{:.3f}") -> str:
    """R as a markdown table: rows 'after task i', columns 'task j'."""
    m = _as_matrix(R)
    lines = [f"**{title}**", ""] if title else []
    rows = ([task_names[i]] + ["—" if not np.isfinite(v) else fmt.format(v) for v in row] for i, row in enumerate(m))
    lines.append(markdown_table(["after \\ on", *task_names], rows))
    return "\n".join(lines)


def markdown_summary(rows: dict[str, dict[str, float | None]], metrics: Sequence[str]) -> str:
    """Strategies as rows, metrics as columns."""
    def cell(v: float | None) -> str:
        return "—" if v is None or not np.isfinite(v) else f"{v:.4g}"

    return markdown_table(["strategy", *metrics],
                          ([name] + [cell(values.get(m)) for m in metrics] for name, values in rows.items()))


def plot_heatmaps(matrices: dict[str, Matrix], task_names: Sequence[str], path: Path, title: str,
                  higher_is_better: bool = True, fmt: str = "{:.2f}") -> Path:
    """One heatmap per strategy on a shared color scale (darker = worse)."""
    from robocl.eval.plots import plt, save_figure

    names = list(matrices)
    n = len(names)
    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols + 1.0, 3.6 * rows), squeeze=False, layout="constrained")
    data = [np.asarray(matrices[k], dtype=float) for k in names]
    finite = np.concatenate([d[np.isfinite(d)] for d in data]) if data else np.zeros(1)
    lo, hi = (float(np.min(finite)), float(np.max(finite))) if finite.size else (0.0, 1.0)
    cmap = "viridis" if higher_is_better else "viridis_r"
    for ax, name, d in zip(axes.flat, names, data):
        im = ax.imshow(d, cmap=cmap, vmin=lo, vmax=hi if hi > lo else lo + 1e-9)
        for (i, j), v in np.ndenumerate(d):
            if np.isfinite(v):
                t = (v - lo) / (hi - lo) if hi > lo else 0.5
                light = t > 0.6 if higher_is_better else t < 0.4  # viridis is light at its top end
                ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=6, color="k" if light else "w")
        ax.set_title(name, fontsize=9)
        ax.set_xticks(range(len(task_names)), task_names, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(task_names)), task_names, fontsize=7)
    fig.supxlabel("evaluated on task", fontsize=9)
    fig.supylabel("after training task", fontsize=9)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.7)
    fig.suptitle(title)
    return save_figure(fig, path)


def plot_curves(curves: dict[str, ContinualCurve], task_names: Sequence[str], path: Path, ylabel: str,
                log_y: bool = False) -> Path:
    """Continual evaluation curves: one panel per strategy, one line per task, task ends dashed."""
    from robocl.eval.plots import plt, save_figure

    names = list(curves)
    n = len(names)
    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False, sharey=True,
                             layout="constrained")
    for ax, name in zip(axes.flat, names):
        c = curves[name]
        vals = np.asarray(c.values, dtype=float)
        for j, task in enumerate(task_names):
            if vals.size:
                ax.plot(c.iterations, vals[:, j], lw=1.2, label=task)
        for end in c.task_ends:
            ax.axvline(end, color="0.6", ls="--", lw=0.7)
        if log_y:
            ax.set_yscale("log")
        ax.set_title(name, fontsize=9)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.supxlabel("training iteration (dashed: end of a task)", fontsize=9)
    fig.supylabel(ylabel, fontsize=9)
    axes.flat[0].legend(fontsize=7, loc="best")
    return save_figure(fig, path)
