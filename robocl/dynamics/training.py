"""Offline training of dynamics models with Lightning (the framework stays at this edge)."""

from __future__ import annotations

import copy
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping
from pytorch_lightning.callbacks.early_stopping import EarlyStoppingReason
from torch.utils.data import DataLoader, TensorDataset

from robocl.dynamics.base import DynamicsModel, Transitions
from robocl.errors import UsageError
from robocl.utils.io import atomic_torch_save
from robocl.utils.lightning import fit_quietly, quiet_trainer


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
        if len(batch) == 4:  # (s, a, s', task id): a multi-task model's mean per-task loss
            loss = self.model.multitask_loss(Transitions(*batch[:3]), batch[3])
        else:
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
    """Fit with a quiet CPU Lightning Trainer (robocl.utils.lightning: no logger, no checkpoint files:
    callers write their own artifacts); `max_minutes` ends training at that wall-clock budget."""
    trainer = quiet_trainer(epochs, progress_bar=progress_bar, callbacks=callbacks, max_minutes=max_minutes)
    return fit_quietly(trainer, module, train_loader, val_loader)


def gaussian_nll(model: DynamicsModel, data: Transitions) -> torch.Tensor:
    """Mean Gaussian NLL of the normalized codec target (members averaged; no bootstrap): the
    validation criterion of `fit`, comparable between epochs and model kinds."""
    mean, logvar = model.predict_targets(model.model_inputs(data.states, data.actions))
    target = model.target_norm.normalize(model.codec.targets(data.states, data.next_states))
    return (((mean - target) ** 2) * torch.exp(-logvar) + logvar).mean()


class BatchIndex(torch.utils.data.Dataset):
    """Whole batches of a Transitions by index (one slice per batch, not one Python call per sample);
    with `tasks` (N,), each batch also carries its transitions' task ids."""

    def __init__(self, data: Transitions, batch_size: int, shuffle: bool, seed: int,
                 tasks: torch.Tensor | None = None) -> None:
        self.data, self.batch_size, self.shuffle, self.tasks = data, batch_size, shuffle, tasks
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.arange(len(data))

    def __len__(self) -> int:
        return -(-len(self.data) // self.batch_size)

    def __getitem__(self, i: int) -> list[torch.Tensor]:
        if i == 0 and self.shuffle:
            self.order = torch.randperm(len(self.data), generator=self.generator)
        idx = self.order[i * self.batch_size:(i + 1) * self.batch_size]
        d = self.data[idx]
        return [d.states, d.actions, d.next_states] + ([] if self.tasks is None else [self.tasks[idx]])


class EarlyStoppedModule(DynamicsModule):
    """Tracks validation NLL per epoch and keeps the best weights (restored after training).

    With `val_tasks` (a multi-task model: each validation transition's task id), the criterion is the
    mean over the tasks present of each task's NLL under its own embedding, and the MSE is per
    transition, each under its own task's embedding."""

    def __init__(self, model: DynamicsModel, val: Transitions, lr: float, weight_decay: float,
                 on_epoch=None, val_tasks: torch.Tensor | None = None) -> None:
        super().__init__(model, lr=lr, weight_decay=weight_decay)
        self.val = val
        self.val_tasks = val_tasks
        self.on_epoch = on_epoch
        self.history = {"train_loss": [], "val_nll": [], "val_mse": []}
        self.best: tuple[float, int, dict[str, torch.Tensor]] | None = None
        self.optimizer_state: dict | None = None  # a resumed fit's optimizer state (fit(resume=...))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        opt = super().configure_optimizers()
        if self.optimizer_state is not None:
            opt.load_state_dict(self.optimizer_state)
        return opt

    def validation_step(self, batch, batch_idx: int) -> None:  # validation runs in on_validation_epoch_end
        pass

    def on_validation_epoch_end(self) -> None:
        with torch.no_grad():
            if self.val_tasks is None:
                nll = float(chunked_mean(lambda d: gaussian_nll(self.model, d), self.val))
                mse = float(chunked_mean(lambda d: one_step_mse(self.model, d), self.val))
            else:
                nlls = per_task(self.model, self.val, self.val_tasks, gaussian_nll)
                mses = per_task(self.model, self.val, self.val_tasks, one_step_mse)
                nll = sum(v for v, _ in nlls.values()) / len(nlls)
                mse = sum(v * n for v, n in mses.values()) / len(self.val)
        self.history["val_nll"].append(nll)
        self.history["val_mse"].append(mse)
        self.log("val_nll", nll, prog_bar=False)
        epoch = len(self.history["val_nll"])
        if self.best is None or nll < self.best[0]:
            self.best = (nll, epoch, {k: v.detach().clone() if torch.is_tensor(v) else copy.deepcopy(v)
                                      for k, v in self.model.state_dict().items()})
        if self.on_epoch is not None:
            train = self._epoch_losses and sum(self._epoch_losses) / len(self._epoch_losses)
            self.on_epoch(epoch, {"train_loss": train or None, "val_nll": nll, "val_mse": mse})


def chunked_mean(fn, data: Transitions, chunk: int = 65536) -> torch.Tensor:
    parts = [(fn(data[i:i + chunk]), min(chunk, len(data) - i)) for i in range(0, len(data), chunk)]
    return sum(v * n for v, n in parts) / len(data)


def per_task(model: DynamicsModel, data: Transitions, tasks: torch.Tensor, fn) -> dict[int, tuple[float, int]]:
    """{task id: (mean of `fn(model, chunk)` over that task's transitions under its own embedding, count)}
    for a multi-task model (`model.using_task`)."""
    out = {}
    for t in torch.unique(tasks).tolist():
        part = data[torch.nonzero(tasks == t).squeeze(1)]
        with model.using_task(int(t)):
            out[int(t)] = (float(chunked_mean(lambda d: fn(model, d), part)), len(part))
    return out


CHECKPOINT_FORMAT = "robocl.train-checkpoint"
CHECKPOINT_VERSION = 1


def rng_state() -> dict[str, Any]:
    """The global torch, numpy and Python generators' states (tensors and ints: loadable weights_only)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"torch": torch.get_rng_state(), "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos),
                                                        int(has_gauss), float(cached)],
            "python": random.getstate()}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate((state["python"][0], tuple(state["python"][1]), state["python"][2]))


class CheckpointingStop(EarlyStopping):
    """Early stopping on the validation NLL that, once it has judged an epoch, writes the whole fit state to
    `path` atomically (temp file + rename: a kill leaves the previous epoch's checkpoint): model, optimizer,
    its own state, the module's history and best weights, the epochs done and whether the fit is done, the
    wall clock spent, and the generators the next epoch draws from (global torch/numpy/Python, batch order),
    so a resumed fit continues exactly where this one was."""

    def __init__(self, path: Path, identity: dict[str, Any], batches: BatchIndex, max_epochs: int,
                 elapsed_before: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path, self.identity, self.batches, self.max_epochs = Path(path), identity, batches, max_epochs
        self.elapsed_before, self.t0 = elapsed_before, time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, module: EarlyStoppedModule) -> None:
        super().on_train_epoch_end(trainer, module)  # judge the epoch first, then save it
        self.save(module, trainer.optimizers[0], done=bool(trainer.should_stop))

    def save(self, module: EarlyStoppedModule, optimizer: torch.optim.Optimizer, done: bool) -> None:
        epochs = len(module.history["val_nll"])
        atomic_torch_save({
            "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "identity": self.identity,
            "epochs": epochs, "done": done or epochs >= self.max_epochs, "complete": False,
            "elapsed_s": self.elapsed_before + time.perf_counter() - self.t0,
            "model": module.model.state_dict(), "optimizer": optimizer.state_dict(), "stop": self.state_dict(),
            "history": module.history, "best": module.best,
            "rng": rng_state(), "batches": self.batches.generator.get_state(),
        }, self.path)


def read_checkpoint(path: Path, what: str = "resume=true") -> dict[str, Any]:
    """A fit checkpoint written by `fit(checkpoint=...)`, checked for format and version; a missing, damaged
    or foreign file is a UsageError (one line) and is left as it is."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{what}: {path.parent} holds no training checkpoint ({path.name}): nothing to resume; "
                         "pass hydra.run.dir=<the run directory to resume> (or resume=<that directory>)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        detail = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise UsageError(f"{what}: {path} is damaged or truncated ({detail}); it is left as it is: start a new "
                         "run directory, or rerun without resume=true to start this one over") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise UsageError(f"{what}: {path} is not a robocl-train checkpoint (no '{CHECKPOINT_FORMAT}' format tag)")
    if state.get("version") != CHECKPOINT_VERSION:
        raise UsageError(f"{what}: {path} is checkpoint format version {state.get('version')}; this robocl "
                         f"resumes version {CHECKPOINT_VERSION}: start a new run directory")
    return state


def identity_mismatch(saved: dict[str, Any], identity: dict[str, Any]) -> list[str]:
    """The dotted keys of `identity` (a checkpoint's identity, or a part of it) whose values differ in `saved`."""
    out = []
    for key, value in identity.items():
        have = saved.get(key) if isinstance(saved, dict) else None
        if isinstance(value, dict) and isinstance(have, dict):
            out += [f"{key}.{k}" for k in identity_mismatch(have, value)]
        elif have != value:
            out.append(f"{key} ({_short(have)} in the checkpoint, {_short(value)} now)")
    return out


def _short(value: Any) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= 40 else text[:37] + "..."


def mark_complete(path: Path) -> None:
    """Mark a done fit's checkpoint complete: its command wrote all its outputs (resume has nothing to do)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    atomic_torch_save({**state, "complete": True}, path)


def fit(model: DynamicsModel, train: Transitions, val: Transitions, max_epochs: int = 100, patience: int = 8,
        batch_size: int = 256, lr: float = 1e-3, weight_decay: float = 1e-5, seed: int = 0,
        on_epoch=None, max_minutes: float | None = None, fit_normalizers: bool = True,
        train_tasks: torch.Tensor | None = None, val_tasks: torch.Tensor | None = None,
        checkpoint: Path | None = None, identity: dict[str, Any] | None = None,
        resume: dict[str, Any] | None = None) -> dict:
    """Train on `train` with early stopping on validation NLL (`patience` epochs without improvement);
    the best epoch's weights are kept. Normalizers are fitted on `train` only (unless `fit_normalizers` is
    False: fine-tuning a pretrained model keeps its normalization).

    `train_tasks`, `val_tasks` (N,) int64: each transition's task id, for a multi-task model (a
    HyperNetwork with an embedding per id): all tasks are trained jointly, each step's loss the mean over
    the tasks in the batch of that task's NLL (`model.multitask_loss`), and early stopping watches the
    mean per-task validation NLL.

    `checkpoint`: after every epoch the whole fit state is written there atomically, tagged with `identity`
    (what the fit belongs to: data, settings). `resume`: such a checkpoint (`read_checkpoint`, its identity
    checked by the caller): the fit continues after its last epoch, with the model, optimizer, early stopping,
    history, best weights and random generators of that moment, so it ends as the uninterrupted fit would have
    (bitwise, on the same machine and threads); `max_minutes` counts the wall clock spent before it too.

    Returns the history: per-epoch `train_loss`, `val_nll`, `val_mse`, and `best_epoch`, `epochs`,
    `stopped_by` (early_stopping | max_epochs | time_budget: `max_minutes` of wall clock)."""
    pl.seed_everything(seed, workers=False, verbose=False)
    if fit_normalizers:  # False when fine-tuning a pretrained model: its weights expect its own normalization
        model.fit_normalizers(train)
    if (train_tasks is None) != (val_tasks is None):
        raise ValueError("fit: train_tasks and val_tasks go together")
    if train_tasks is not None and not hasattr(model, "multitask_loss"):
        raise TypeError(f"fit: task ids need a multi-task model (a HyperNetwork), got {type(model).__name__}")
    batches = BatchIndex(train, batch_size, True, seed, train_tasks)
    loader = DataLoader(batches, batch_size=None, shuffle=False)
    # One dummy validation batch per epoch: the metric itself is computed over all of `val` at epoch end.
    val_loader = DataLoader([0], batch_size=None)
    module = EarlyStoppedModule(model, val, lr, weight_decay, on_epoch, val_tasks)
    watch = {"monitor": "val_nll", "patience": patience, "mode": "min", "check_finite": True}
    elapsed = float(resume["elapsed_s"]) if resume is not None else 0.0
    stop = (EarlyStopping(**watch) if checkpoint is None else
            CheckpointingStop(checkpoint, identity or {}, batches, max_epochs, elapsed, **watch))
    done = 0
    if resume is not None:
        model.load_state_dict(resume["model"])
        module.history = {k: list(v) for k, v in resume["history"].items()}
        module.best = resume["best"]
        module.optimizer_state = resume["optimizer"]
        stop.load_state_dict(resume["stop"])
        batches.generator.set_state(resume["batches"])
        done = int(resume["epochs"])
    minutes = None if not max_minutes else max_minutes - elapsed / 60
    if resume is None or not (resume["done"] or (minutes is not None and minutes <= 0)):
        if resume is not None:
            set_rng_state(resume["rng"])  # last: nothing may draw between here and the next epoch's batches
        trainer = run_trainer(module, loader, val_loader, max_epochs - done, callbacks=[stop], max_minutes=minutes)
        if checkpoint is not None:
            stop.save(module, trainer.optimizers[0], done=True)
    history = dict(module.history)
    epochs = len(history["val_nll"])
    history["stopped_by"] = ("early_stopping" if stop.stopping_reason != EarlyStoppingReason.NOT_STOPPED else
                             "max_epochs" if epochs >= max_epochs else "time_budget")
    if module.best is not None:
        model.load_state_dict(module.best[2])
        history["best_epoch"] = module.best[1]
    history["epochs"] = len(history["val_nll"])
    model.eval()
    return history
