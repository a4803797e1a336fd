"""Offline-evaluation plot: prediction error over time per method, regime changes marked."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robocl.eval.plots import plt, save_figure
from robocl.offline.metrics import trailing_mean

MAX_POINTS = 2000


def _downsample(t: np.ndarray, e: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    smooth = trailing_mean(e, window)
    step = max(1, len(t) // MAX_POINTS)
    return t[::step], smooth[::step]


def plot_errors(episodes: list, path: Path) -> Path:
    """episodes: EpisodeResult list. Left: one-step dynamics error; right (if any): refiner action error."""
    has_ref = any(r["method"] + ":identity" in ep.series for ep in episodes for r in ep.rows)
    cols = 2 if has_ref else 1
    fig, axes = plt.subplots(len(episodes), cols, figsize=(11 * cols / 1.4, 3.6 * len(episodes)), squeeze=False,
                             constrained_layout=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for row, ep in enumerate(episodes):
        t = ep.times
        window = max(5, len(t) // 400)
        ax_dyn, ax_ref = axes[row][0], (axes[row][1] if has_ref else None)
        for k, r in enumerate(ep.rows):
            name = r["method"]
            e = ep.series[name]
            c = colors[k % len(colors)]
            if name + ":identity" in ep.series:
                x, y = _downsample(t, e, window)
                ax_ref.plot(x, y, color=c, lw=1.2, label=f"{name} (refined)")
                x, y = _downsample(t, ep.series[name + ":identity"], window)
                ax_ref.plot(x, y, color=c, lw=1.0, ls="--", label=f"{name} (unrefined)")
            else:
                x, y = _downsample(t, e, window)
                ax_dyn.plot(x, y, color=c, lw=1.3, label=name)
        for ax, ylabel in ((ax_dyn, "one-step error (normalized MSE)"), (ax_ref, "action error (normalized MSE)")):
            if ax is None:
                continue
            for ch in ep.changes:
                ax.axvline(t[ch.index], color="k", ls=":", lw=1.0)
                ax.annotate(ch.after, (t[ch.index], 1.0), xycoords=("data", "axes fraction"), fontsize=7,
                            rotation=90, va="top", ha="right")
            ax.set_yscale("log")
            ax.set_xlabel("time [s]")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{ep.name}  (dotted = regime change; mean over {window} steps)", fontsize=9)
            if ax.lines:
                ax.legend(loc="best", fontsize=7)
    return save_figure(fig, path)
