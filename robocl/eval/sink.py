"""Incremental result writing: every finished run is on disk before the next one starts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from robocl.eval.results import build_results, write_metrics_csv, write_results


class ResultSink:
    """Collects run rows and rewrites results.json + metrics.csv atomically after each one.

    `config` is the run's config as plain data (results.json's "config"), or a function returning it, called
    at each flush, so that settings completed during the run (robocl-train's refiner data) are recorded."""

    def __init__(self, run_dir: Path, command: str, experiment: str,
                 config: dict[str, Any] | Callable[[], dict[str, Any]]) -> None:
        self.run_dir = Path(run_dir)
        self.command = command
        self.experiment = experiment
        self.config = config
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
        config = self.config() if callable(self.config) else self.config
        doc = build_results(self.command, self.experiment, config, self.runs, self.summary, self.notes, self.extra)
        write_results(self.run_dir, doc)
        if self.runs:
            write_metrics_csv(self.run_dir / "metrics.csv", self.runs)
        return doc
