"""Experiment loggers: none, csv (per-step trace) or wandb (offline unless WANDB_MODE is set)."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf


class NoLogger:
    wants_steps = False  # a fanned-out unit sends its step rows back only when a logger keeps them

    def log_step(self, row: dict[str, Any]) -> None:
        pass

    def log_run(self, row: dict[str, Any]) -> None:
        pass

    def finish(self) -> None:
        pass


class CsvLogger(NoLogger):
    """Appends per-step rows to steps.csv (flushed per run, so an interrupted run keeps them; a resumed
    run appends to them)."""

    wants_steps = True

    def __init__(self, run_dir: Path, append: bool = False) -> None:
        self.path = Path(run_dir) / "steps.csv"
        self._header_written = append and self.path.exists() and self.path.stat().st_size > 0
        self._fh = self.path.open("a" if append else "w", newline="")
        self._writer: csv.DictWriter | None = None

    def log_step(self, row: dict[str, Any]) -> None:
        if self._writer is None:
            self._writer = csv.DictWriter(self._fh, fieldnames=list(row), extrasaction="ignore")
            if not self._header_written:
                self._writer.writeheader()
        self._writer.writerow(row)

    def log_run(self, row: dict[str, Any]) -> None:
        self._fh.flush()

    def finish(self) -> None:
        self._fh.close()


class WandbLogger(NoLogger):
    wants_steps = True

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
        return CsvLogger(run_dir, append=bool(OmegaConf.select(cfg, "resume", default=False)))
    if kind == "wandb":
        return WandbLogger(cfg, run_dir, str(cfg.get("experiment_name", "robocl")))
    return NoLogger()
