"""Offline training of dynamics models with Lightning (the framework stays at this edge)."""

from __future__ import annotations

import logging
import warnings

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from robocl.dynamics.base import DynamicsModel, Transitions


class DynamicsModule(pl.LightningModule):
    """Wraps any DynamicsModel: trains on its own loss, validates one-step MSE."""

    def __init__(self, model: DynamicsModel, lr: float = 1e-3, weight_decay: float = 1e-5) -> None:
        super().__init__()
        self.model = model
        self.lr = lr
        self.weight_decay = weight_decay
        self.history: dict[str, list[float]] = {"train_loss": [], "val_mse": []}
        self._epoch_losses: list[float] = []

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.model.loss(Transitions(*batch))
        self._epoch_losses.append(float(loss.detach()))
        self.log("train_loss", loss, prog_bar=True, on_step=False, on_epoch=True)
        return loss

    def on_train_epoch_end(self) -> None:
        if self._epoch_losses:
            self.history["train_loss"].append(sum(self._epoch_losses) / len(self._epoch_losses))
        self._epoch_losses = []

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        data = Transitions(*batch)
        mse = one_step_mse(self.model, data)
        self.history["val_mse"].append(float(mse))
        self.log("val_mse", mse, prog_bar=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay)


def one_step_mse(model: DynamicsModel, data: Transitions) -> torch.Tensor:
    """Mean squared error of the normalized target (comparable across state dimensions)."""
    pred, _ = model.predict(data.states, data.actions)
    codec = model.codec
    err = codec.targets(data.states, pred) - codec.targets(data.states, data.next_states)
    return (err / model.target_norm.std).pow(2).mean()


def train_offline(
    model: DynamicsModel,
    data: Transitions,
    epochs: int = 30,
    batch_size: int = 256,
    lr: float = 1e-3,
    val_fraction: float = 0.1,
    seed: int = 0,
    progress: bool = False,
    fit_normalizers: bool = True,
) -> dict[str, list[float]]:
    """Fit `model` on `data` with a Lightning Trainer on the CPU; returns the loss history."""
    pl.seed_everything(seed, workers=False, verbose=False)
    if fit_normalizers:
        model.fit_normalizers(data)
    n = len(data)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = int(n * val_fraction) if n >= 20 else 0
    val, train = data[perm[:n_val]], data[perm[n_val:]]
    train_loader = DataLoader(
        TensorDataset(train.states, train.actions, train.next_states), batch_size=batch_size, shuffle=True
    )
    val_loader = (
        DataLoader(TensorDataset(val.states, val.actions, val.next_states), batch_size=max(n_val, 1))
        if n_val
        else None
    )
    module = DynamicsModule(model, lr=lr)
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, train_loader, val_loader)
    model.eval()
    return module.history
