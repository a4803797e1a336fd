"""`robocl-eval data=PATH methods=[...]`: offline adaptation evaluation over recorded robot data.

Streams the recorded transitions of each episode (ROS 1/2 bag, CSV) in time order through every
method (prequential: predict, then learn) and writes results.json, metrics.csv, errors.png and
summary.md to the run directory. See robocl/offline/evaluate.py for what is measured.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from robocl.build import checks as check
from robocl.cli.app import CONFIG_PACKAGE, UsageError, config_groups, run_app
from robocl.cli.recorded import check_sources
from robocl.eval.markdown import markdown_table
from robocl.eval.results import format_summary_table
from robocl.utils.io import atomic_write_text

DESCRIPTION = ("Offline adaptation evaluation: replay recorded robot data (data=PATH: a ROS 1/2 bag, a CSV, "
               "or a folder of them) through each model and adaptation strategy (methods=[frozen,online,...]).")


# ---- config -------------------------------------------------------------------------------------
def settings_from(cfg: DictConfig):
    from robocl.offline.evaluate import EvalSettings

    m = "metrics."
    limit = OmegaConf.select(cfg, "data.max_transitions")
    return EvalSettings(
        kstep=check.number(cfg, m + "kstep", lo=1, integer=True),
        kstep_stride=(check.number(cfg, m + "kstep_stride", lo=1, integer=True)
                      if OmegaConf.select(cfg, m + "kstep_stride") is not None
                      else check.number(cfg, m + "kstep", lo=1, integer=True)),
        chunk=check.number(cfg, "chunk", lo=1, integer=True),
        pre_window=check.number(cfg, m + "pre_window", lo=1, integer=True),
        smooth=check.number(cfg, m + "smooth", lo=1, integer=True),
        hold=check.number(cfg, m + "hold", lo=1, integer=True),
        tolerance=check.number(cfg, m + "adapt_tolerance", lo=0),
        end_window=check.number(cfg, m + "end_window", lo=1, integer=True),
        reservoir=check.number(cfg, m + "reservoir", lo=1, integer=True),
        max_transitions=None if limit is None else check.number(cfg, "data.max_transitions", lo=2, integer=True),
        detect_window=check.number(cfg, m + "detect_window", lo=1, integer=True),
        detect_factor=check.number(cfg, m + "detect_factor", lo=1, lo_open=True),
    )


def group_node(cfg: DictConfig, group: str, name: str) -> DictConfig:
    """The config of option `name` of `group`: the composed one if selected, else the file, resolved in cfg."""
    current = OmegaConf.select(cfg, f"{group}.kind")
    if current == name:
        return cfg[group]
    text = (resources.files(CONFIG_PACKAGE) / group / f"{name}.yaml").read_text()
    merged = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    merged[group] = OmegaConf.create(text)
    OmegaConf.resolve(merged)
    return merged[group]


BOUNDARIES = ("labels", "infer", "none")


def boundaries_mode(cfg: DictConfig) -> str:
    mode = str(check.get(cfg, "boundaries"))
    if mode not in BOUNDARIES:
        raise UsageError(f"boundaries={mode}: accepted {', '.join(BOUNDARIES)}")
    return mode


def parse_methods(cfg: DictConfig) -> list[tuple[str, str, DictConfig | None]]:
    """(name, kind, config node): kind is `frozen`, `sim`, `bias`, `continual` or `refiner`."""
    groups = config_groups()
    continual, refiners = groups.get("continual", []), groups.get("refiner", [])
    out = []
    names = check.string_list(cfg, "methods")
    for name in names:
        if name == "frozen":
            out.append((name, "frozen", None))
        elif name == "sim":  # the simulator-pretrained model, frozen, on frozen's error scale (beside model=)
            if not cfg.robot.get("env_id"):
                raise UsageError(f"methods: sim is the simulator-pretrained model, and robot {cfg.robot.name} has "
                                 "no simulator (robot.env_id)")
            out.append((name, "sim", None))
        elif name == "bias":  # the frozen model + the running mean of its last bias.window residuals
            out.append((name, "bias", OmegaConf.create({"window": check.number(cfg, "bias.window", lo=1,
                                                                                 integer=True)})))
        elif name in continual:
            if name == "hypercrl" and OmegaConf.select(cfg, "dynamics.kind") != "hypernet":
                raise UsageError("methods: hypercrl needs dynamics=hypernet (got dynamics="
                                 f"{OmegaConf.select(cfg, 'dynamics.kind')})")
            node = group_node(cfg, "continual", name)
            if boundaries_mode(cfg) == "infer" and "task_inference" in node:
                node = OmegaConf.merge(node, {"task_inference": True})
            out.append((name, "continual", node))
        elif name in refiners:
            out.append((name, "refiner", group_node(cfg, "refiner", name)))
        else:
            raise UsageError(f"methods: {name!r} is not a method; accepted: frozen, sim, bias, "
                             f"{', '.join(continual)} (continual strategies), {', '.join(refiners)} (refiners)")
    if len(set(names)) != len(names):
        raise UsageError(f"methods={names}: a method is listed twice")
    return out


def validate(cfg: DictConfig) -> None:
    """Everything checked before the run directory exists; any robot layout (robot.codec) is read."""
    check.number(cfg, "seed", integer=True)
    boundaries_mode(cfg)
    settings_from(cfg)
    if OmegaConf.select(cfg, "export") is None:
        _check_period(cfg)
        _check_model(cfg)  # model=PATH's dynamics settings apply from here on (methods=[hypercrl] needs hypernet)
        parse_methods(cfg)
    check_sources(cfg)


def _check_model(cfg: DictConfig) -> None:
    """model=PATH fits the robot and data.period (one line if not), before the run directory exists."""
    from robocl.build.models import adopt_model_settings

    adopt_model_settings(cfg, period=check.number(cfg, "data.period", lo=0, lo_open=True))


def _check_period(cfg: DictConfig) -> None:
    """Another data.period than robot.dt pretrains the nominal model at that period, which needs a
    simulator that takes `dt` (the UGV's); the quadrotor's runs at robot.control_hz."""
    from robocl.build.models import model_path
    from robocl.robots.spec import nominal_env

    period = check.number(cfg, "data.period", lo=0, lo_open=True)
    dt = check.number(cfg, "robot.dt", lo=0, lo_open=True)
    if abs(period - dt) <= 1e-12 or model_path(cfg) is not None or not cfg.robot.get("env_id"):
        return
    if "dt" not in nominal_env(cfg.robot)[0]:
        raise UsageError(f"data.period={period:g}: robot={cfg.robot.name}'s nominal model is pretrained at robot.dt="
                         f"{dt:g} s; for data at another period set robot.control_hz={1 / period:g} "
                         f"robot.dt={period:g}, or pass model=PATH")


# ---- run ----------------------------------------------------------------------------------------
def _export(cfg: DictConfig, mapping, episodes) -> int:
    from robocl.offline.readers import align, export_csv, open_source

    target = Path(str(cfg.export)).expanduser()
    written = []
    for ep in episodes:
        out = target if len(episodes) == 1 else target / f"{ep.name}.csv"
        rows = export_csv(align(open_source(ep, mapping).events(), mapping), out, mapping)
        written.append((out, rows))
    for out, rows in written:
        print(f"exported {rows} aligned rows to {out}")
    return 0


def evaluate(cfg: DictConfig, run_dir: Path) -> int:
    from robocl.eval.progress import progress_bar
    from robocl.eval.sink import ResultSink
    from robocl.experiments import offline_eval
    from robocl.experiments.fanout import executor_settings
    from robocl.parallel.executor import executor_session

    mapping, episodes, infos = check_sources(cfg)
    if OmegaConf.select(cfg, "export") is not None:
        return _export(cfg, mapping, episodes)
    settings = settings_from(cfg)
    methods = [(name, kind, None if node is None else OmegaConf.to_container(node, resolve=True))
               for name, kind, node in parse_methods(cfg)]
    console = Console(stderr=True, soft_wrap=True)
    console.print(f"[bold]robocl-eval[/] {len(episodes)} episode(s) from {cfg.data.path} -> {run_dir}")
    sink = ResultSink(run_dir, "eval", str(cfg.experiment_name), lambda: OmegaConf.to_container(cfg, resolve=True))
    sink.extra["episodes"] = []
    try:
        with executor_session(executor_settings(cfg), warm=[offline_eval.__name__]), \
                progress_bar(bool(cfg.runtime.progress)) as progress:
            records = offline_eval.run(cfg, run_dir, progress, sink, mapping, episodes, infos, methods, settings,
                                       boundaries_mode(cfg) == "labels")
    finally:
        sink.flush()
    doc = sink.flush()
    text = summary_text(doc, records)
    atomic_write_text(run_dir / "summary.md", text + "\n")
    print(text)
    print(f"\nresults: {run_dir / 'results.json'}")
    from robocl.cli.run import report_failures

    return report_failures(doc, console)


def summary_text(doc: dict[str, Any], episodes: list[dict[str, Any]]) -> str:
    """summary.md: the mean table, then each episode's regime changes (error after, time to adapt)."""
    summary = doc["summary"]
    n_changes = max((len(ep["changes"]) for ep in episodes), default=0)
    cols = ["dyn_mse", "kstep_mse", "action_mse", "action_mse_identity"]
    cols += [f"post_change_mse_c{j}" for j in range(1, n_changes + 1)]
    cols += [f"post_change_action_mse_c{j}" for j in range(1, n_changes + 1)]
    cols += [f"time_to_adapt_steps_c{j}" for j in range(1, n_changes + 1)]
    cols += ["forgetting_mse", "transitions_per_s"]
    cols = [c for c in cols if any(c in v for v in summary.values())]
    lines = ["## Summary (means over episodes)", "", format_summary_table(summary, cols)]
    for ep in episodes:
        rows_of = [r for r in doc["runs"] if r["task"] == ep["name"]]
        if not ep["changes"] or not rows_of:
            continue
        names = [r["method"] for r in rows_of]
        lines += ["", f"## {ep['name']}: regime changes ({ep['transitions']} transitions)", "",
                  "(post_mse: mean error from the change to the next one; action error for refiners; "
                  "time_to_adapt in steps)", ""]
        rows = []
        for j, ch in enumerate(ep["changes"]):
            post = [_fmt(r["changes"][j]["post_mse"]) for r in rows_of]
            tta = ["never" if (v := r["changes"][j]["time_to_adapt_steps"]) is None else v for r in rows_of]
            rows.append([f"{ch['before']} -> {ch['after']}", ch["index"], f"{ch['t_s']:.1f}", *post, *tta])
        header = ["change", "step", "t [s]", *(f"{m} post_mse" for m in names), *(f"{m} time_to_adapt" for m in names)]
        lines.append(markdown_table(header, rows))
    rates = {r["method"]: r.get("transitions_per_s") for r in doc["runs"]}
    reads = [ep["read_transitions_per_s"] for ep in episodes]
    lines += ["", "throughput (transitions/s): " + ", ".join(f"{m} {_fmt(v)}" for m, v in rates.items())
              + f"; reading + alignment {_fmt(min(reads)) if reads else '—'}"]
    return "\n".join(lines)


def _fmt(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"


def rewrite_args(args: list[str]) -> list[str]:
    """`data=PATH` is shorthand for `data.path=PATH` (data is also the node of the topic/column mapping)."""
    return [f"data.path={a[5:]}" if a.startswith("data=") else a for a in args]


def main(argv: list[str] | None = None) -> None:
    args = rewrite_args(sys.argv[1:] if argv is None else list(argv))
    sys.exit(run_app("robocl-eval", DESCRIPTION, evaluate, config_name="eval", argv=args, validate=validate))


if __name__ == "__main__":
    main()
