"""`robocl-bench suite=NAME ...`: performance benchmarks measured side by side with peers."""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from robocl.cli.app import run_app
from robocl.eval.progress import progress_bar
from robocl.eval.results import build_results, format_summary_table, summarize, write_results
from robocl.utils.imports import load_callable


def run_bench(cfg: DictConfig, run_dir: Path) -> int:
    suite = load_callable(str(cfg.suite.factory), "suite.factory")
    with progress_bar(bool(cfg.runtime.progress)) as progress:
        out = suite(cfg, progress)
    summary = summarize(out["runs"])
    written = {name: str(write(run_dir / name)) for name, write in out.get("files", {}).items()}
    extra = {"ratios": out.get("ratios", {}), **out.get("extra", {})} | ({"files": sorted(written)} if written else {})
    doc = build_results("bench", f"bench_{cfg.suite.name}", OmegaConf.to_container(cfg, resolve=True), out["runs"],
                        summary, out.get("notes"), extra)
    write_results(run_dir, doc)
    print(format_summary_table(summary))
    for key, value in doc["ratios"].items():
        print(f"{key}: {value:.2f}x")
    for line in out.get("lines", []):
        print(line)
    for note in doc.get("notes", []):
        print(f"note: {note}")
    for path in written.values():
        print(f"plot: {path}")
    print(f"\nresults: {run_dir / 'results.json'}")
    return 0


def validate(cfg: DictConfig) -> None:
    """`model=PATH` (a robocl-train model to time) fits the robot, and the planner bench's keys hold, before the
    run directory exists."""
    from robocl.build.models import adopt_model_settings

    adopt_model_settings(cfg)
    if OmegaConf.select(cfg, "suite.name") == "planner":
        from robocl.experiments.bench_planner import check_config

        check_config(cfg)


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_app("robocl-bench", "Benchmarks side by side with peers (suite=planner, ...).", run_bench,
                     config_name="bench", argv=argv, validate=validate))


if __name__ == "__main__":
    main()
