"""The one Lightning set-up robocl's trainers share (dynamics, continual strategies, drag, AFM): a quiet
CPU Trainer with no logger and no checkpoint files (callers write their own artifacts), fitted with
Lightning's loggers and warnings silenced. Imported only by trainer modules, never on the control path."""

from __future__ import annotations

import logging
import warnings
from datetime import timedelta
from typing import Any

import pytorch_lightning as pl

LIGHTNING_LOGGERS = ("pytorch_lightning", "lightning.pytorch", "lightning_fabric")


def quiet_trainer(max_epochs: int, *, progress_bar: bool = False, callbacks: list | None = None,
                  max_minutes: float | None = None, **options: Any) -> pl.Trainer:
    """A quiet CPU Trainer for `max_epochs`; `max_minutes` ends training at that wall-clock budget;
    `options`: further `pl.Trainer` arguments (e.g. `limit_val_batches`, `limit_train_batches`)."""
    for name in LIGHTNING_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    return pl.Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=progress_bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=callbacks or [],
        max_time=timedelta(minutes=max_minutes) if max_minutes else None,
        **options,
    )


def fit_quietly(trainer: pl.Trainer, module: pl.LightningModule, *args: Any, **kwargs: Any) -> pl.Trainer:
    """`trainer.fit(module, *args, **kwargs)` with Lightning's warnings silenced; returns the trainer."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, *args, **kwargs)
    return trainer
