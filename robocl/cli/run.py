"""`robocl-run experiment=NAME ...`: a simulation experiment (the main job)."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from robocl.cli.app import UsageError, run_app
from robocl.eval.progress import progress_bar
from robocl.eval.results import format_summary_table, summarize
from robocl.eval.sink import ResultSink
from robocl.experiments.fanout import executor_settings, resuming
from robocl.parallel.executor import executor_session
from robocl.parallel.ledger import UnitLedger, check_rerun
from robocl.utils.imports import load_callable

HEADLINE = ["success_rate", "tracking_rmse", "crashes", "dyn_mse", "plan_ms_median", "plan_ms_p95", "control_hz",
            "epe", "part_iou", "open_success", "infer_ms_median",  # cabinet_drag
            "part_iou_old", "part_iou_new", "part_iou_forgetting", "epe_old", "epe_new",  # drag_continual
            "epe_forgetting"]


def validate_experiment(cfg: DictConfig, run_dir: Path | None = None) -> None:
    """The robot has a simulator, `model=PATH` fits it, the runner module's own `validate(cfg)`, and a resumed
    run's ledger (run_dir/units.json) belongs to this config."""
    from robocl.build.models import adopt_model_settings
    from robocl.robots.spec import require_simulator

    require_simulator(cfg.robot, f"robocl-run experiment={cfg.get('experiment_name')} (a simulation)")
    executor_settings(cfg)
    adopt_model_settings(cfg)
    module = load_callable(str(cfg.runner), "runner")
    check = getattr(module, "validate", None)
    if check is not None:
        check(cfg)
    if run_dir is not None and resuming(cfg):  # a ledger for another config: one line, the run dir left as it is
        how = getattr(module, "RESUME", "units")
        config = OmegaConf.to_container(cfg, resolve=True)
        if how == "units":
            UnitLedger(run_dir, config, resume=True)
        elif how == "checkpoints":
            check_rerun(run_dir, config, str(cfg.experiment_name))
        else:
            raise UsageError(f"resume=true: experiment={cfg.experiment_name} does not resume: {how}")


def run_experiment(cfg: DictConfig, run_dir: Path) -> int:
    runner = load_callable(str(cfg.runner), "runner")
    runner = getattr(runner, "run", runner)
    sink = ResultSink(run_dir, "run", str(cfg.experiment_name), lambda: OmegaConf.to_container(cfg, resolve=True))
    console = Console(stderr=True, soft_wrap=True)
    console.print(f"[bold]robocl-run[/] {cfg.experiment_name} -> {run_dir}")
    settings = executor_settings(cfg)
    try:
        with executor_session(settings, warm=[str(cfg.runner)]), progress_bar(bool(cfg.runtime.progress)) as progress:
            sink.flush()  # results.json names the run's config from the start: resume=true finds it after any kill
            params = inspect.signature(runner).parameters
            out = runner(cfg, run_dir, progress, sink) if "sink" in params else runner(cfg, run_dir, progress)
    finally:
        sink.flush()  # whatever finished is on disk, also after an error or Ctrl-C
    if isinstance(out, dict):  # runners may return their results instead of using the sink
        for row in out.get("runs", []):
            sink.runs.append(row)
        sink.notes += list(out.get("notes", []))
        if out.get("summary") is not None:
            sink.summary = out["summary"]
        sink.extra.update(out.get("extra", {}))
    doc = sink.flush()
    summary = doc["summary"] or summarize(doc["runs"])
    metrics = [m for m in HEADLINE if any(m in v for v in summary.values())]
    metrics += sorted({k for v in summary.values() for k in v} - set(metrics) - {"steps", "waypoints_total"})[:4]
    print(format_summary_table(summary, metrics))
    print(f"\nresults: {run_dir / 'results.json'}")
    return report_failures(doc, console)


def report_failures(doc: dict, console: Console) -> int:
    """Units that raised (the others finished): listed with their error and log; exit 1."""
    failed = doc.get("failed_units") or []
    for item in failed:
        console.print(f"[red]failed unit[/] {item['unit']}: {item['error']} (log: {item['log']})")
    if failed:
        console.print(f"{len(failed)} unit(s) failed; rerun them with resume=true")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_app("robocl-run", "Run a simulation experiment (default: experiment=ugv_continual).",
                     run_experiment, argv=argv, validate=validate_experiment))


if __name__ == "__main__":
    main()
