"""Figures of the cabinet_drag experiment: metric bars per method and split, training curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from robocl.eval.plots import save_figure  # noqa: E402


def plot_metric_bars(table: dict[str, dict[str, dict[str, float]]], metrics: list[str], path: Path) -> Path:
    """table[split][method][metric] -> one panel per metric, grouped bars per split."""
    splits = list(table)
    methods = sorted({m for s in table.values() for m in s})
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
    width = 0.8 / max(len(methods), 1)
    for ax, metric in zip(axes[0], metrics):
        for i, method in enumerate(methods):
            vals = [table[s].get(method, {}).get(metric, np.nan) for s in splits]
            ax.bar(np.arange(len(splits)) + i * width, [np.nan if v is None else v for v in vals], width,
                   label=method)
        ax.set_xticks(np.arange(len(splits)) + width * (len(methods) - 1) / 2)
        ax.set_xticklabels(splits, fontsize=8)
        ax.set_title(metric)
        if metric == "epe":
            ax.set_yscale("log")
            ax.set_ylabel("mm (log)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_training(histories: dict[str, list[dict[str, float]]], path: Path) -> Path:
    """Per-epoch training loss terms of each trained variant (stage boundary dashed)."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for name, hist in histories.items():
        if not hist:
            continue
        epochs = np.arange(1, len(hist) + 1)
        axes[0].plot(epochs, [h["epe_cm"] for h in hist], label=f"{name} epe (all)")
        axes[0].plot(epochs, [h["epe_moving_cm"] for h in hist], "--", label=f"{name} epe (moving)")
        axes[1].plot(epochs, [h["seg"] for h in hist], label=f"{name} seg BCE")
        boundary = sum(1 for h in hist if h["stage"] == 1) + 0.5
        for ax in axes:
            ax.axvline(boundary, color="0.7", ls=":")
    axes[0].set_ylabel("cm")
    axes[0].set_yscale("log")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)
