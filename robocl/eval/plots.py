"""Plots a person would rather look at than read: driven paths with regime changes marked."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from robocl.utils.io import atomic_write  # noqa: E402


def save_figure(fig: plt.Figure, path: Path) -> Path:
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
    return path


def plot_paths(courses: dict[str, np.ndarray], paths: dict[str, dict[str, tuple[np.ndarray, list[str]]]],
               path: Path, reach_radius: float = 0.5) -> Path:
    """One panel per course: waypoints (reach circles), each method's path, regime changes.

    paths[course][method] = (states (T, >=2), regime label per step).
    """
    n = len(courses)
    fig, axes = plt.subplots(1, n, figsize=(6.5 * n, 6), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (course, wps) in zip(axes[0], courses.items()):
        for i, (x, y) in enumerate(wps):
            ax.add_patch(plt.Circle((x, y), reach_radius, fill=False, color="0.6", lw=0.8))
            ax.text(x, y, str(i + 1), fontsize=6, ha="center", va="center", color="0.4")
        ax.plot(wps[:, 0], wps[:, 1], ":", color="0.7", lw=0.8)
        for k, (method, (states, regimes)) in enumerate(paths.get(course, {}).items()):
            c = colors[k % len(colors)]
            ax.plot(states[:, 0], states[:, 1], "-", color=c, lw=1.5, label=method)
            changes = [t for t in range(1, len(regimes)) if regimes[t] != regimes[t - 1]]
            for t in changes:
                ax.plot(states[t, 0], states[t, 1], "X", color=c, ms=9, mec="k")
                if k == 0:
                    ax.annotate(regimes[t], (states[t, 0], states[t, 1]), fontsize=7,
                                xytext=(5, 5), textcoords="offset points")
        _frame_course(ax, wps, margin=6.0)
        ax.set_title(f"{course}  (X = regime change)")
        ax.set_xlabel("x [m]")
        ax.set_ylabel("y [m]")
        if paths.get(course):
            ax.legend(loc="best", fontsize=8)
    return save_figure(fig, path)


def _frame_course(ax: plt.Axes, waypoints: np.ndarray, margin: float) -> None:
    """Keep the course readable: a robot that drives far away is clipped at the frame edge."""
    lo, hi = waypoints.min(0) - margin, waypoints.max(0) + margin
    lo = np.minimum(lo, -margin)  # the start (origin) stays in view
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal", adjustable="box")


def plot_bars(summary: dict[str, dict[str, float]], metric: str, path: Path, title: str = "") -> Path:
    """Bar chart of one summary metric by method."""
    methods = list(summary)
    values = [summary[m].get(metric) or 0.0 for m in methods]
    fig, ax = plt.subplots(figsize=(1.5 + 1.2 * len(methods), 4))
    ax.bar(methods, values, color=plt.rcParams["axes.prop_cycle"].by_key()["color"][: len(methods)])
    for i, v in enumerate(values):
        ax.text(i, v, f"{v:.2f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel(metric)
    ax.set_title(title or metric)
    return save_figure(fig, path)


def plot_tracking(traces: dict, path: Path) -> Path:
    """Quadrotor tracking: 3-D paths against the reference, and position error over time.

    traces[method] has .times, .states (T, >=3), .references (T, 3), .errors, .regimes.
    """
    fig = plt.figure(figsize=(13, 5))
    ax3d = fig.add_subplot(1, 2, 1, projection="3d")
    ax_err = fig.add_subplot(1, 2, 2)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (method, trace) in enumerate(traces.items()):
        if not trace.states:
            continue
        states, refs = np.asarray(trace.states), np.asarray(trace.references)
        if k == 0:
            ax3d.plot(refs[:, 0], refs[:, 1], refs[:, 2], "--", color="0.5", lw=1, label="reference")
            _shade_regimes(ax_err, trace.times, trace.regimes)
        c = colors[k % len(colors)]
        ax3d.plot(states[:, 0], states[:, 1], states[:, 2], color=c, lw=1.4, label=method)
        ax_err.plot(trace.times, trace.errors, color=c, lw=1.2, label=method)
    ax3d.set_xlabel("x [m]")
    ax3d.set_ylabel("y [m]")
    ax3d.set_zlabel("z [m]")
    ax3d.legend(fontsize=8)
    ax_err.set_xlabel("time [s]")
    ax_err.set_ylabel("position error [m]")
    ax_err.set_title("tracking error (shaded: regime change active)")
    ax_err.legend(fontsize=8)
    return save_figure(fig, path)


def _shade_regimes(ax: plt.Axes, times: list[float], regimes: list[str]) -> None:
    start = None
    for t, label in zip(times + [times[-1]], regimes + ["nominal"]):
        if label != "nominal" and start is None:
            start = t
        elif label == "nominal" and start is not None:
            ax.axvspan(start, t, color="orange", alpha=0.15)
            start = None
