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
    run_trainer(module, train_loader, val_loader, epochs, progress_bar=progress)
    model.eval()
    return module.history


def run_trainer(module: pl.LightningModule, train_loader, val_loader, epochs: int, callbacks: list | None = None,
                progress_bar: bool = False, max_minutes: float | None = None) -> pl.Trainer:
    """A quiet CPU Lightning Trainer (no logger, no checkpoint files: callers write their own artifacts);
    `max_minutes` ends training at that wall-clock budget."""
    from datetime import timedelta

    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=progress_bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=callbacks or [],
        max_time=timedelta(minutes=max_minutes) if max_minutes else None,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, train_loader, val_loader)
    return trainer


def gaussian_nll(model: DynamicsModel, data: Transitions) -> torch.Tensor:
    """Mean Gaussian NLL of the normalized codec target (members averaged; no bootstrap): the
    validation criterion of `fit`, comparable between epochs and model kinds."""
    mean, logvar = model.predict_targets(model.model_inputs(data.states, data.actions))
    target = model.target_norm.normalize(model.codec.targets(data.states, data.next_states))
    return (((mean - target) ** 2) * torch.exp(-logvar) + logvar).mean()


class BatchIndex(torch.utils.data.Dataset):
    """Whole batches of a Transitions by index (one slice per batch, not one Python call per sample)."""

    def __init__(self, data: Transitions, batch_size: int, shuffle: bool, seed: int) -> None:
        self.data, self.batch_size, self.shuffle = data, batch_size, shuffle
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.arange(len(data))

    def __len__(self) -> int:
        return -(-len(self.data) // self.batch_size)

    def __getitem__(self, i: int) -> list[torch.Tensor]:
        if i == 0 and self.shuffle:
            self.order = torch.randperm(len(self.data), generator=self.generator)
        idx = self.order[i * self.batch_size:(i + 1) * self.batch_size]
        d = self.data[idx]
        return [d.states, d.actions, d.next_states]


class EarlyStoppedModule(DynamicsModule):
    """Tracks validation NLL per epoch and keeps the best weights (restored after training)."""

    def __init__(self, model: DynamicsModel, val: Transitions, lr: float, weight_decay: float,
                 on_epoch=None) -> None:
        super().__init__(model, lr=lr, weight_decay=weight_decay)
        self.val = val
        self.on_epoch = on_epoch
        self.history = {"train_loss": [], "val_nll": [], "val_mse": []}
        self.best: tuple[float, int, dict[str, torch.Tensor]] | None = None

    def validation_step(self, batch, batch_idx: int) -> None:  # validation runs in on_validation_epoch_end
        pass

    def on_validation_epoch_end(self) -> None:
        with torch.no_grad():
            nll = float(chunked_mean(lambda d: gaussian_nll(self.model, d), self.val))
            mse = float(chunked_mean(lambda d: one_step_mse(self.model, d), self.val))
        self.history["val_nll"].append(nll)
        self.history["val_mse"].append(mse)
        self.log("val_nll", nll, prog_bar=False)
        epoch = len(self.history["val_nll"])
        if self.best is None or nll < self.best[0]:
            self.best = (nll, epoch, {k: v.detach().clone() for k, v in self.model.state_dict().items()})
        if self.on_epoch is not None:
            train = self._epoch_losses and sum(self._epoch_losses) / len(self._epoch_losses)
            self.on_epoch(epoch, {"train_loss": train or None, "val_nll": nll, "val_mse": mse})


def chunked_mean(fn, data: Transitions, chunk: int = 65536) -> torch.Tensor:
    parts = [(fn(data[i:i + chunk]), min(chunk, len(data) - i)) for i in range(0, len(data), chunk)]
    return sum(v * n for v, n in parts) / len(data)


def fit(model: DynamicsModel, train: Transitions, val: Transitions, max_epochs: int = 100, patience: int = 8,
        batch_size: int = 256, lr: float = 1e-3, weight_decay: float = 1e-5, seed: int = 0,
        on_epoch=None, max_minutes: float | None = None, fit_normalizers: bool = True) -> dict:
    """Train on `train` with early stopping on validation NLL (`patience` epochs without improvement);
    the best epoch's weights are kept. Normalizers are fitted on `train` only (unless `fit_normalizers` is
    False: fine-tuning a pretrained model keeps its normalization).

    Returns the history: per-epoch `train_loss`, `val_nll`, `val_mse`, and `best_epoch`, `epochs`,
    `stopped_by` (early_stopping | max_epochs | time_budget: `max_minutes` of wall clock)."""
    from pytorch_lightning.callbacks import EarlyStopping

    pl.seed_everything(seed, workers=False, verbose=False)
    if fit_normalizers:  # False when fine-tuning a pretrained model: its weights expect its own normalization
        model.fit_normalizers(train)
    loader = DataLoader(BatchIndex(train, batch_size, True, seed), batch_size=None, shuffle=False)
    # One dummy validation batch per epoch: the metric itself is computed over all of `val` at epoch end.
    val_loader = DataLoader([0], batch_size=None)
    module = EarlyStoppedModule(model, val, lr, weight_decay, on_epoch)
    stop = EarlyStopping(monitor="val_nll", patience=patience, mode="min", check_finite=True)
    run_trainer(module, loader, val_loader, max_epochs, callbacks=[stop], max_minutes=max_minutes)
    history = dict(module.history)
    epochs = len(history["val_nll"])
    history["stopped_by"] = ("early_stopping" if stop.stopped_epoch > 0 else
                             "max_epochs" if epochs >= max_epochs else "time_budget")
    if module.best is not None:
        model.load_state_dict(module.best[2])
        history["best_epoch"] = module.best[1]
    history["epochs"] = len(history["val_nll"])
    model.eval()
    return history
