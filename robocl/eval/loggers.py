"""Experiment loggers: none, csv (per-step trace) or wandb (offline unless WANDB_MODE is set)."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf


class NoLogger:
    def log_step(self, row: dict[str, Any]) -> None:
        pass

    def log_run(self, row: dict[str, Any]) -> None:
        pass

    def finish(self) -> None:
        pass


class CsvLogger(NoLogger):
    """Appends per-step rows to steps.csv (flushed per run, so an interrupted run keeps them)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / "steps.csv"
        self._fh = self.path.open("w", newline="")
        self._writer: csv.DictWriter | None = None

    def log_step(self, row: dict[str, Any]) -> None:
        if self._writer is None:
            self._writer = csv.DictWriter(self._fh, fieldnames=list(row), extrasaction="ignore")
            self._writer.writeheader()
        self._writer.writerow(row)

    def log_run(self, row: dict[str, Any]) -> None:
        self._fh.flush()

    def finish(self) -> None:
        self._fh.close()


class WandbLogger(NoLogger):
    def __init__(self, cfg: DictConfig, run_dir: Path, name: str) -> None:
        import wandb

        os.environ.setdefault("WANDB_MODE", str(cfg.logger.get("mode", "offline")))
        os.environ.setdefault("WANDB_SILENT", "true")
        self.wandb = wandb
        self.run = wandb.init(project=str(cfg.logger.get("project", "robocl")), name=name, dir=str(run_dir),
                              config=OmegaConf.to_container(cfg, resolve=True), reinit="finish_previous")
        self._step = 0

    def log_step(self, row: dict[str, Any]) -> None:
        self._step += 1
        self.run.log({f"step/{k}": v for k, v in row.items() if isinstance(v, (int, float))}, step=self._step)

    def log_run(self, row: dict[str, Any]) -> None:
        tag = f"{row.get('method')}/{row.get('task')}/seed{row.get('seed')}"
        self.run.log({f"run/{tag}/{k}": v for k, v in row.items() if isinstance(v, (int, float))}, step=self._step)

    def finish(self) -> None:
        self.run.finish()


def make_logger(cfg: DictConfig, run_dir: Path) -> NoLogger:
    kind = str(OmegaConf.select(cfg, "logger.kind", default="none"))
    if kind == "csv":
        return CsvLogger(run_dir)
    if kind == "wandb":
        return WandbLogger(cfg, run_dir, str(cfg.get("experiment_name", "robocl")))
    return NoLogger()
