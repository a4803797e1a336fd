"""Incremental result writing: every finished run is on disk before the next one starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from robocl.eval.results import build_results, write_metrics_csv, write_results


class ResultSink:
    """Collects run rows and rewrites results.json + metrics.csv atomically after each one."""

    def __init__(self, run_dir: Path, command: str, experiment: str, cfg: DictConfig) -> None:
        self.run_dir = Path(run_dir)
        self.command = command
        self.experiment = experiment
        self.cfg = cfg
        self.runs: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.extra: dict[str, Any] = {}
        self.summary: dict[str, dict[str, float]] | None = None

    def add_run(self, row: dict[str, Any]) -> None:
        self.runs.append(row)
        self.flush()

    def note(self, text: str) -> None:
        self.notes.append(text)

    def flush(self) -> dict[str, Any]:
        doc = build_results(self.command, self.experiment, self.cfg, self.runs, self.summary, self.notes,
                            self.extra)
        write_results(self.run_dir, doc)
        if self.runs:
            write_metrics_csv(self.run_dir / "metrics.csv", self.runs)
        return doc
