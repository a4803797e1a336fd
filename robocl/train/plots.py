"""robocl-train's pictures: loss curves (training.png) and validation error by horizon (errors.png)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robocl.eval.plots import plt, save_figure


def plot_training(history: dict, path: Path, loss: str = "bootstrapped NLL") -> Path:
    fig, (ax_loss, ax_mse) = plt.subplots(1, 2, figsize=(11, 4))
    epochs = np.arange(1, len(history.get("val_nll", [])) + 1)
    train = history.get("train_loss", [])
    ax_loss.plot(np.arange(1, len(train) + 1), train, label=f"train loss ({loss})")
    val_label = "validation NLL" + (" (mean over tasks)" if "task" in loss else "")
    ax_loss.plot(epochs, history.get("val_nll", []), label=val_label)
    best = history.get("best_epoch")
    for ax in (ax_loss, ax_mse):
        if best:
            ax.axvline(best, color="0.5", ls=":", lw=1, label=f"best epoch {best} (kept)")
        ax.set_xlabel("epoch")
    ax_loss.set_ylabel("Gaussian NLL (normalized target)")
    ax_loss.legend(fontsize=8)
    ax_mse.semilogy(epochs, history.get("val_mse", []), color="C2", label="validation one-step MSE")
    ax_mse.set_ylabel("normalized MSE")
    ax_mse.legend(fontsize=8)
    fig.suptitle("robocl-train: early stopping on validation NLL")
    return save_figure(fig, path)


def plot_horizon(errors: dict[str, np.ndarray], path: Path) -> Path:
    """errors[name] = (horizon,) mean validation error of the k-step prediction."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, e in errors.items():
        ax.semilogy(np.arange(1, len(e) + 1), e, "o-", ms=3, label=name)
    ax.set_xlabel("prediction horizon k (steps, open loop under the recorded commands)")
    ax.set_ylabel("validation error (normalized MSE)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title("validation error by prediction horizon")
    return save_figure(fig, path)
