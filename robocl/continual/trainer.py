"""Offline task training for continual strategies, with Lightning at this edge only.

The strategy supplies the loss (task loss + its regularizer or replay), the parameters to
optimize, and a hook after each optimizer step (SI's path integral); the loop can call an
evaluation function every N iterations (continual evaluation for the stability gap).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from robocl.dynamics.base import Transitions
from robocl.utils.lightning import fit_quietly, quiet_trainer

if TYPE_CHECKING:
    from robocl.continual.trainable import TrainableStrategy

EvalHook = Callable[[int], None]  # called with the strategy's global iteration count


class StrategyModule(pl.LightningModule):
    """Trains `strategy.model` on `strategy.training_loss` for one task."""

    def __init__(self, strategy: TrainableStrategy, lr: float, weight_decay: float = 0.0,
                 eval_every: int = 0, eval_hook: EvalHook | None = None) -> None:
        super().__init__()
        self.strategy = strategy
        self.model = strategy.model  # registered so Lightning sets train/eval mode
        self.lr = lr
        self.weight_decay = weight_decay
        self.eval_every = eval_every
        self.eval_hook = eval_hook
        self.losses: list[float] = []

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        # (s, a, s'), then whatever per-transition tensors the strategy trains with (e.g. task ids)
        loss = self.strategy.training_loss(Transitions(*batch[:3]), *batch[3:])
        self.losses.append(float(loss.detach()))
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        self.strategy.after_step()
        self.strategy.iteration += 1
        if self.eval_hook is not None and self.eval_every > 0 and self.strategy.iteration % self.eval_every == 0:
            was_training = self.model.training
            self.model.eval()
            with torch.inference_mode():
                self.eval_hook(self.strategy.iteration)
            self.model.train(was_training)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.strategy.trainable_parameters(), lr=self.lr, weight_decay=self.weight_decay)


def fit_task(strategy: TrainableStrategy, data: Transitions, epochs: int, batch_size: int, lr: float,
             seed: int = 0, eval_every: int = 0, eval_hook: EvalHook | None = None,
             extra: tuple[torch.Tensor, ...] = ()) -> list[float]:
    """Run the strategy's offline training on one task's data; returns per-step losses. `extra`:
    per-transition tensors batched alongside and passed on to `strategy.training_loss`."""
    pl.seed_everything(seed, workers=False, verbose=False)
    loader = DataLoader(TensorDataset(data.states, data.actions, data.next_states, *extra),
                        batch_size=min(batch_size, len(data)), shuffle=True, drop_last=len(data) > batch_size)
    module = StrategyModule(strategy, lr=lr, eval_every=eval_every, eval_hook=eval_hook)
    fit_quietly(quiet_trainer(epochs, limit_val_batches=0), module, loader)
    strategy.model.eval()
    return module.losses
