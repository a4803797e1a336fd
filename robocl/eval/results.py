"""results.json (schema robocl.results/1) and metrics.csv writers."""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

from robocl.eval.markdown import markdown_table
from robocl.utils.io import atomic_write_json, atomic_write_text, json_safe

SCHEMA = "robocl.results/1"
ID_KEYS = ("method", "seed", "task")


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    def of(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:  # running from a bare checkout
            return "0+unknown"

    # mujoco's version from its metadata: importing it here, before an env module has chosen the
    # headless GL backend (MUJOCO_GL=egl), would leave rendering without an OpenGL context
    return {"robocl": of("robocl"), "torch": torch.__version__, "mujoco": of("mujoco")}


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean of every numeric metric per method, over seeds and tasks (non-finite/None skipped)."""
    grouped: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        for key, value in run.items():
            if key in ID_KEYS or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if value == value and abs(value) != float("inf"):
                grouped[run["method"]][key].append(float(value))
    return {m: {k: statistics.fmean(v) for k, v in metrics.items()} for m, metrics in grouped.items()}


def build_results(
    command: str,
    experiment: str,
    config: dict[str, Any],
    runs: list[dict[str, Any]],
    summary: dict[str, dict[str, float]] | None = None,
    notes: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The robocl.results/1 document; `config` is the run's config as plain data."""
    notes = list(notes or [])
    doc = {
        "schema": SCHEMA,
        "command": command,
        "experiment": experiment,
        "config": config,
        "versions": versions(),
        "summary": summary if summary is not None else summarize(runs),
        "runs": runs,
        **(extra or {}),
    }
    doc = json_safe(doc, notes)
    if notes:
        doc["notes"] = notes
    return doc


def write_results(run_dir: Path, doc: dict[str, Any]) -> Path:
    return atomic_write_json(Path(run_dir) / "results.json", doc)


def write_metrics_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    """One row per run; columns are the union of keys in first-seen order."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()})
    return atomic_write_text(path, buf.getvalue())


def validate_results(doc: dict[str, Any]) -> None:
    """Raise ValueError if `doc` breaks the robocl.results/1 contract (used by tests and users)."""
    required = {"schema", "command", "experiment", "config", "versions", "summary", "runs"}
    missing = required - set(doc)
    if missing:
        raise ValueError(f"results.json misses keys: {sorted(missing)}")
    if doc["schema"] != SCHEMA:
        raise ValueError(f"schema is {doc['schema']!r}, expected {SCHEMA!r}")
    if doc["command"] not in {"run", "eval", "bench", "train", "ros"}:
        raise ValueError(f"command {doc['command']!r} not in run|eval|bench|train|ros")
    for run in doc["runs"]:
        for key in ID_KEYS:
            if key not in run:
                raise ValueError(f"a run lacks {key!r}: {run}")
    if json_safe(doc) != doc:
        raise ValueError("results.json holds values that are not plain JSON numbers/strings")
    for method, metrics in doc["summary"].items():
        for name, value in metrics.items():
            if value is not None and not isinstance(value, (int, float)):
                raise ValueError(f"summary[{method}][{name}] is not a number")


def format_summary_table(summary: dict[str, dict[str, float]], metrics: list[str] | None = None) -> str:
    """Markdown table of summary metrics (methods as rows)."""
    if not summary:
        return "(no results)"
    metrics = metrics or sorted({k for m in summary.values() for k in m})
    return markdown_table(["method", *metrics],
                          ([method] + [_fmt(values.get(m)) for m in metrics] for method, values in summary.items()))


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
