"""Offline-evaluation plot: prediction error over time per method, regime changes marked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from robocl.eval.plots import plt, save_figure
from robocl.offline.metrics import trailing_mean

MAX_POINTS = 2000


def _downsample(e: np.ndarray, window: int, step: int) -> list[float]:
    return [float(f"{v:.5g}") for v in trailing_mean(e, window)[::step]]


def error_curves(times: np.ndarray, series: dict[str, np.ndarray], method: str) -> dict[str, list[float]]:
    """One method's error over an episode as plotted: a trailing mean over len/400 (at least 5) steps,
    at most MAX_POINTS points. Plain lists, so they are kept in units.json (a resumed run plots them).
    Keys: `t` [s] and `dyn` (one-step error), or `refined` and `identity` (a refiner's action error)."""
    window, step = max(5, len(times) // 400), max(1, len(times) // MAX_POINTS)
    out = {"t": [float(f"{v:.6g}") for v in times[::step]], "window": window}
    if method + ":identity" in series:
        out["refined"] = _downsample(series[method], window, step)
        out["identity"] = _downsample(series[method + ":identity"], window, step)
    else:
        out["dyn"] = _downsample(series[method], window, step)
    return out


def plot_errors(episodes: list[dict[str, Any]], path: Path) -> Path | None:
    """episodes: [{"name", "changes": [{"t_s", "after"}], "curves": {method: error_curves(...)}}].
    Left: one-step dynamics error; right (if any): refiner action error (dashed: unrefined)."""
    if not episodes:
        return None
    has_ref = any("refined" in c for ep in episodes for c in ep["curves"].values())
    cols = 2 if has_ref else 1
    fig, axes = plt.subplots(len(episodes), cols, figsize=(11 * cols / 1.4, 3.6 * len(episodes)), squeeze=False,
                             constrained_layout=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for row, ep in enumerate(episodes):
        ax_dyn, ax_ref = axes[row][0], (axes[row][1] if has_ref else None)
        window = 5
        for k, (name, curve) in enumerate(ep["curves"].items()):
            c, window = colors[k % len(colors)], curve["window"]
            if "refined" in curve:
                ax_ref.plot(curve["t"], curve["refined"], color=c, lw=1.2, label=f"{name} (refined)")
                ax_ref.plot(curve["t"], curve["identity"], color=c, lw=1.0, ls="--", label=f"{name} (unrefined)")
            else:
                ax_dyn.plot(curve["t"], curve["dyn"], color=c, lw=1.3, label=name)
        for ax, ylabel in ((ax_dyn, "one-step error (normalized MSE)"), (ax_ref, "action error (normalized MSE)")):
            if ax is None:
                continue
            for ch in ep["changes"]:
                ax.axvline(ch["t_s"], color="k", ls=":", lw=1.0)
                ax.annotate(ch["after"], (ch["t_s"], 1.0), xycoords=("data", "axes fraction"), fontsize=7,
                            rotation=90, va="top", ha="right")
            ax.set_yscale("log")
            ax.set_xlabel("time [s]")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{ep['name']}  (dotted = regime change; mean over {window} steps)", fontsize=9)
            if ax.lines:
                ax.legend(loc="best", fontsize=7)
    return save_figure(fig, path)
