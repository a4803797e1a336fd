"""Experiment loggers: none, csv (per-step trace) or wandb (offline unless WANDB_MODE is set)."""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


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

    def __init__(self, settings: Mapping[str, Any], run_dir: Path, name: str, config: dict[str, Any]) -> None:
        import wandb

        os.environ.setdefault("WANDB_MODE", str(settings.get("mode", "offline")))
        os.environ.setdefault("WANDB_SILENT", "true")
        self.wandb = wandb
        self.run = wandb.init(project=str(settings.get("project", "robocl")), name=name, dir=str(run_dir),
                              config=config, reinit="finish_previous")
        self._step = 0

    def log_step(self, row: dict[str, Any]) -> None:
        self._step += 1
        self.run.log({f"step/{k}": v for k, v in row.items() if isinstance(v, (int, float))}, step=self._step)

    def log_run(self, row: dict[str, Any]) -> None:
        tag = f"{row.get('method')}/{row.get('task')}/seed{row.get('seed')}"
        self.run.log({f"run/{tag}/{k}": v for k, v in row.items() if isinstance(v, (int, float))}, step=self._step)

    def finish(self) -> None:
        self.run.finish()


def make_logger(settings: Mapping[str, Any], run_dir: Path, name: str = "robocl", config: dict[str, Any] | None = None,
                append: bool = False) -> NoLogger:
    """The logger that `settings` (the `logger=` config as plain data: kind, mode, project) names; `config`
    (the run's, as plain data) goes to wandb; `append`: a resumed run's steps.csv keeps its rows."""
    kind = str(settings.get("kind", "none"))
    if kind == "csv":
        return CsvLogger(run_dir, append=append)
    if kind == "wandb":
        return WandbLogger(settings, run_dir, name, config or {})
    return NoLogger()
