"""`robocl-train data=PATH ...`: fit a robot's nominal dynamics model from its own recorded data.

Reads ROS 1/2 bags, CSV or a folder of episodes with robocl-eval's readers and data.* keys, holds
out validation data by episode (or by time block), trains with Lightning and early stopping on the
validation NLL, and writes to the run directory: `model.pt` (a self-describing artifact that
`model=PATH` loads in robocl-run, robocl-eval, robocl-ros and robocl-bench), `results.json`
(`command: train`), `training.png` (loss curves) and `errors.png` (validation error by horizon).

`dynamics=hypernet` learns one task per regime label (unlabeled transitions: `train.nominal_label`),
all tasks jointly; the artifact names the embeddings by label, and `model=PATH` plans on the nominal
task's (task 0).

After every epoch the fit's whole state goes atomically into the run directory's `training.ckpt`, tagged
with the data fingerprint and the settings it belongs to; `resume=true hydra.run.dir=DIR` (or `resume=DIR`)
continues a killed run after its last finished epoch and ends as the uninterrupted run would have (same
seed: the same epochs, metrics and weights). A checkpoint of other data or settings, or a damaged one, is
one line (exit 2) and is left as it is; a finished run resumed says so and rewrites nothing.
"""

from __future__ import annotations

import copy
import sys
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from robocl.build import checks as check
from robocl.cli.app import UsageError, run_app
from robocl.cli.recorded import check_sources
from robocl.robots.spec import spec_from_config

DESCRIPTION = ("Fit the nominal dynamics model from a robot's recorded data (data=PATH: a ROS 1/2 bag, a CSV, or a "
               "folder of them); writes model.pt for model=PATH in the other commands.")
TRAINABLE = ("ensemble", "hypernet")
CHECKPOINT = "training.ckpt"
# train.* keys the fit does not depend on: a resumed run may change them (max_minutes: a bigger budget)
NOT_IN_CHECKPOINT = ("max_minutes", "horizon", "compare_sim", "out")


def settings(cfg: DictConfig) -> dict[str, Any]:
    t = "train."
    return {
        "val_fraction": check.number(cfg, t + "val_fraction", lo=0, hi=0.9, lo_open=True),
        "max_epochs": check.number(cfg, t + "max_epochs", lo=1, integer=True),
        "patience": check.number(cfg, t + "patience", lo=1, integer=True),
        "batch_size": check.number(cfg, t + "batch_size", lo=1, integer=True),
        "lr": check.number(cfg, t + "lr", lo=0, lo_open=True),
        "weight_decay": check.number(cfg, t + "weight_decay", lo=0),
        "seed": check.number(cfg, t + "seed", integer=True),
        "horizon": check.number(cfg, t + "horizon", lo=1, integer=True),
        "compare_sim": check.flag(cfg, t + "compare_sim"),
        "min_transitions": check.number(cfg, t + "min_transitions", lo=2, integer=True),
        "max_minutes": check.number(cfg, t + "max_minutes", lo=0, lo_open=True),
        "init": init_mode(cfg),
        "nominal_label": nominal_label(cfg),
        "max_tasks": check.number(cfg, t + "max_tasks", lo=1, integer=True),
    }


def nominal_label(cfg: DictConfig) -> str:
    value = check.get(cfg, "train.nominal_label")
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"train.nominal_label={value!r}: must be a non-empty regime label (the task of the "
                         "transitions without a label, dynamics=hypernet)")
    return value


INITS = ("scratch", "sim")


def init_mode(cfg: DictConfig) -> str:
    mode = str(check.get(cfg, "train.init"))
    if mode not in INITS:
        raise UsageError(f"train.init={mode}: accepted {', '.join(INITS)}")
    if mode == "sim" and not cfg.robot.get("env_id"):
        raise UsageError(f"train.init=sim: robot {cfg.robot.name} has no simulator to start from (robot.env_id); "
                         "use train.init=scratch")
    return mode


def validate(cfg: DictConfig, run_dir: Path | None = None) -> None:
    spec = spec_from_config(cfg.robot)
    kind = str(OmegaConf.select(cfg, "dynamics.kind"))
    if kind not in TRAINABLE:
        raise UsageError(f"dynamics={kind}: robocl-train fits {', '.join(TRAINABLE)} models")
    refiner = str(OmegaConf.select(cfg, "refiner.kind"))
    if refiner not in ("identity", "afm"):
        raise UsageError(f"refiner={refiner}: robocl-train trains refiner=afm (or none: refiner=identity)")
    if refiner == "afm" and str(cfg.robot.get("codec")) not in ("planar", "quadrotor"):
        raise UsageError(f"refiner=afm: AFM regimes are simulated for codec planar or quadrotor robots "
                         f"(robot {cfg.robot.name} has codec {cfg.robot.get('codec')})")
    if OmegaConf.select(cfg, "model") not in (None, ""):
        raise UsageError("model=...: robocl-train writes a model (run_dir/model.pt, or train.out=PATH); "
                         "it does not read one")
    opts = settings(cfg)
    limit = OmegaConf.select(cfg, "data.max_transitions")
    if limit is not None:
        check.number(cfg, "data.max_transitions", lo=2, integer=True)
    check_sources(cfg)
    if run_dir is not None and OmegaConf.select(cfg, "resume", default=False):
        # a missing, damaged or foreign checkpoint: one line, before the run directory is touched
        from robocl.dynamics.training import read_checkpoint

        checkpoint = run_dir / CHECKPOINT
        check_resumable(read_checkpoint(checkpoint), run_settings(cfg, opts, spec), checkpoint)


def train(cfg: DictConfig, run_dir: Path) -> int:
    import numpy as np
    import torch

    from robocl.build.models import make_model
    from robocl.build.pretrained import simulator_pretrained_model
    from robocl.dynamics.artifact import save_model
    from robocl.dynamics.training import fit, mark_complete, read_checkpoint
    from robocl.eval.progress import progress_bar
    from robocl.eval.sink import ResultSink
    from robocl.offline.dataset import read_recorded, split_validation, task_ids
    from robocl.offline.readers import DataError
    from robocl.train.errors import horizon_errors
    from robocl.train.plots import plot_horizon, plot_training
    from robocl.utils.io import atomic_write, atomic_write_text

    opts = settings(cfg)
    spec = spec_from_config(cfg.robot)
    mapping, episodes, infos = check_sources(cfg)
    checkpoint = run_dir / CHECKPOINT
    saved = None
    if OmegaConf.select(cfg, "resume", default=False):  # the settings are checked before the data is read
        saved = read_checkpoint(checkpoint)
        check_resumable(saved, run_settings(cfg, opts, spec), checkpoint)
    else:
        checkpoint.unlink(missing_ok=True)  # a new run: an earlier run's checkpoint here is not its own
    limit = OmegaConf.select(cfg, "data.max_transitions")
    sink = ResultSink(run_dir, "train", str(cfg.experiment_name), lambda: OmegaConf.to_container(cfg, resolve=True))
    t_start = time.perf_counter()
    with progress_bar(bool(cfg.runtime.progress)) as progress:
        expected = sum(min(i.expected_ticks(mapping.period_ns), int(limit) if limit else 1 << 62) for i in infos)
        task = progress.add_task("reading", total=expected, status="")
        done_before: dict[str, int] = {}

        def on_read(name: str, n: int) -> None:
            done_before[name] = n
            progress.update(task, completed=sum(done_before.values()), status=name)

        try:
            data = read_recorded(episodes, mapping, int(limit) if limit else None, on_read)
        except DataError as exc:
            raise UsageError(str(exc)) from None
        progress.update(task, completed=expected, status=f"{len(data):,} transitions")
        t_read = time.perf_counter() - t_start
        if len(data) < opts["min_transitions"]:
            raise UsageError(f"data={cfg.data.path}: only {len(data)} usable transitions after alignment at period "
                             f"{mapping.period} s (train.min_transitions={opts['min_transitions']}); "
                             "check data.period, "
                             "the topics/columns and data.max_state_gap / data.command_timeout")
        train_data, val_data, how = split_validation(data, opts["val_fraction"])
        # dynamics=hypernet: one task (embedding) per regime label, trained jointly
        tasks = regime_tasks(data, train_data, opts, how) if str(cfg.dynamics.kind) == "hypernet" else None
        identity = {**run_settings(cfg, opts, spec),
                    "data": {"fingerprint": data.fingerprint(), "transitions": len(data), "period": mapping.period,
                             "validation": how, "tasks": tasks}}
        if saved is not None:
            check_resumable(saved, identity, checkpoint)
            if saved["complete"]:
                print(f"robocl-train: {run_dir} is complete ({saved['epochs']} epochs, best "
                      f"{saved['best'][1] if saved['best'] else None}); nothing to resume, nothing rewritten: "
                      f"model {run_dir / 'model.pt'}")
                return 0
            progress.log(f"robocl-train: resuming {run_dir} after epoch {saved['epochs']}"
                         + (" (the fit was done: writing its outputs)" if saved["done"] else ""))
        progress.log(f"robocl-train: {len(train_data):,} training / {len(val_data):,} validation transitions, "
                     f"held out {how}")
        sim_missing = (None if spec.simulator and simulator_runs_at(cfg, spec, mapping.period) else
                       f"robot {spec.name} has no simulator" if not spec.simulator else
                       f"data.period={mapping.period:g} s: robot {spec.name}'s simulator model is pretrained at "
                       f"robot.dt={spec.dt:g} s only")
        if opts["init"] == "sim" and sim_missing:
            raise UsageError(f"train.init=sim: {sim_missing}")
        want_sim = opts["init"] == "sim" or (opts["compare_sim"] and not sim_missing)
        sim_model = simulator_pretrained_model(cfg, mapping.period, log=progress.log) if want_sim else None
        torch.manual_seed(opts["seed"])
        # init=sim: start from the simulator model (its weights and input/target normalization) and fine-tune
        model = copy.deepcopy(sim_model) if opts["init"] == "sim" else make_model(cfg)
        fit_tasks: dict[str, Any] = {}
        if tasks is not None:
            model.set_task_labels(tasks)
            model.set_task(0)  # the nominal task: what model=PATH plans with
            fit_tasks = {"train_tasks": task_ids(train_data, tasks, opts["nominal_label"]),
                         "val_tasks": task_ids(val_data, tasks, opts["nominal_label"])}
            progress.log(f"robocl-train: dynamics=hypernet, {len(tasks)} task(s) by regime label: "
                         + ", ".join(tasks))
        fit_task = progress.add_task("training (epochs)", total=opts["max_epochs"], status="")

        def on_epoch(epoch: int, values: dict[str, float | None]) -> None:
            loss = values["train_loss"]
            status = (f"loss {loss:.3f}  " if loss is not None else "") + \
                f"val nll {values['val_nll']:.3f}  val mse {values['val_mse']:.4f}"
            progress.update(fit_task, completed=epoch, status=status)

        t0 = time.perf_counter()
        history = fit(model, train_data.transitions(), val_data.transitions(), max_epochs=opts["max_epochs"],
                      patience=opts["patience"], batch_size=opts["batch_size"], lr=opts["lr"],
                      weight_decay=opts["weight_decay"], seed=opts["seed"], on_epoch=on_epoch,
                      max_minutes=opts["max_minutes"], fit_normalizers=opts["init"] == "scratch", **fit_tasks,
                      checkpoint=checkpoint, identity=identity, resume=saved)
        t_fit = time.perf_counter() - t0
        progress.update(fit_task, total=history["epochs"], completed=history["epochs"])
        scale = model.target_norm.std.detach().clone()
        if tasks is None:
            curves = {"trained model": horizon_errors(model, scale, val_data.segments, opts["horizon"])}
        else:
            curves, per_task = task_errors(model, scale, tasks, opts["nominal_label"], val_data, opts["horizon"],
                                           fit_tasks)
        main = next(iter(curves.values()))  # the trained model's own curve (a hypernet's: each label's embedding)
        kstep = min(int(cfg.metrics.kstep), opts["horizon"])
        summary: dict[str, Any] = {
            "train_transitions": len(train_data), "val_transitions": len(val_data),
            "train_episodes": len(train_data.episodes()), "val_episodes": len(val_data.episodes()),
            "val_dyn_mse": _num(main[0]), "val_kstep_mse": _num(main[kstep - 1]),
            "kstep": kstep, "best_epoch": history.get("best_epoch"), "epochs": history["epochs"],
            "val_nll": min(history["val_nll"]) if history["val_nll"] else None,
            "read_s": round(t_read, 2), "fit_s": round(t_fit, 2), "init_from_sim": int(opts["init"] == "sim"),
        }
        if tasks is not None:
            summary["num_tasks"] = len(tasks)
            summary["nominal_val_dyn_mse"] = _num(curves[NOMINAL_CURVE][0])
        if opts["compare_sim"] and not sim_missing:
            curves["simulator-pretrained model"] = horizon_errors(sim_model, scale, val_data.segments, opts["horizon"])
            summary["sim_val_dyn_mse"] = _num(curves["simulator-pretrained model"][0])
            summary["sim_val_kstep_mse"] = _num(curves["simulator-pretrained model"][kstep - 1])
        elif opts["compare_sim"]:
            sink.note(f"{sim_missing}: sim_val_dyn_mse is null")
            summary["sim_val_dyn_mse"] = None
        if str(cfg.refiner.get("kind")) == "afm":
            sink.extra["afm_train"] = train_refiner(cfg, model, progress)
    trained_spec = spec if abs(mapping.period - spec.dt) < 1e-12 else _with_period(spec, mapping.period)
    dynamics = OmegaConf.to_container(cfg.dynamics, resolve=True)
    artifact = save_model(run_dir / "model.pt", model, trained_spec, dynamics,
                          data={"path": str(cfg.data.path), "fingerprint": data.fingerprint(),
                                "transitions": len(data), "episodes": data.episodes(), "period": mapping.period,
                                "validation": how},
                          metrics={k: v for k, v in summary.items() if not k.endswith("_s")},
                          extra=None if tasks is None else {"tasks": tasks, "nominal_task": tasks[0]})
    out = OmegaConf.select(cfg, "train.out")
    if out:
        atomic_write(Path(str(out)).expanduser(), lambda fh: fh.write(artifact.read_bytes()))
    sink.summary = {"model": summary}
    sink.runs.append({"method": "model", "seed": opts["seed"], "task": str(Path(str(cfg.data.path)).name), **summary})
    sink.extra.update({"model_path": str(artifact), "validation": how, "history": history,
                       "stopped_by": history["stopped_by"],
                       "horizon_errors": {k: [_num(v) for v in e] for k, e in curves.items()},
                       "episodes": data.stats, "period": mapping.period})
    if tasks is not None:
        sink.extra.update({"tasks": per_task, "nominal_task": tasks[0]})
    sink.flush()
    plot_training(history, run_dir / "training.png", *(() if tasks is None else ("mean per-task NLL",)))
    plot_horizon(curves, run_dir / "errors.png")
    lines = [f"trained {cfg.dynamics.kind} for robot {spec.name} at period {mapping.period} s: {history['epochs']} "
             f"epochs (best {history.get('best_epoch')}, stopped by {history['stopped_by'].replace('_', ' ')}), "
             f"{summary['fit_s']:.0f} s",
             f"validation ({how}): one-step dyn_mse {_fmt(summary['val_dyn_mse'])}, "
             f"{kstep}-step {_fmt(summary['val_kstep_mse'])}"]
    if tasks is not None:
        lines[-1] += " (each transition with its own task's embedding)"
        lines += [f"  task {label!r}: {v['train_transitions']} train / {v['val_transitions']} validation transitions, "
                  f"one-step dyn_mse {_fmt(v['val_dyn_mse'])}" for label, v in per_task.items()]
        lines.append(f"nominal task {tasks[0]!r} (model=PATH plans with it) on all validation data: one-step "
                     f"dyn_mse {_fmt(summary['nominal_val_dyn_mse'])}")
    if summary.get("sim_val_dyn_mse") is not None:
        ratio = summary["sim_val_dyn_mse"] / max(summary["val_dyn_mse"] or np.inf, 1e-12)
        lines.append(f"simulator-pretrained model on the same data: {_fmt(summary['sim_val_dyn_mse'])} "
                     f"({ratio:.1f}x the trained model's)")
    lines.append(f"model: {artifact}" + (f" (copied to {out})" if out else ""))
    text = "\n".join(lines)
    atomic_write_text(run_dir / "summary.md", text + "\n")
    mark_complete(checkpoint)  # last: a run killed before this point resumes (and rewrites the outputs)
    print(text)
    return 0


def run_settings(cfg: DictConfig, opts: dict[str, Any], spec) -> dict[str, Any]:
    """What a fit checkpoint belongs to, besides its data: the train.* settings the fit depends on, the
    dynamics config, the robot and data.max_transitions."""
    return {"train": {k: v for k, v in opts.items() if k not in NOT_IN_CHECKPOINT},
            "dynamics": OmegaConf.to_container(cfg.dynamics, resolve=True), "robot": spec.to_dict(),
            "max_transitions": OmegaConf.select(cfg, "data.max_transitions")}


def check_resumable(saved: dict[str, Any], identity: dict[str, Any], path: Path) -> None:
    from robocl.dynamics.training import identity_mismatch

    differ = identity_mismatch(saved["identity"], identity)
    if differ:
        shown = "; ".join(differ[:3]) + (f"; and {len(differ) - 3} more" if len(differ) > 3 else "")
        raise UsageError(f"resume=true: {path} belongs to other data or settings ({shown}); resume with the "
                         "run's own, or start a new run directory")


NOMINAL_CURVE = "trained model, nominal task's embedding (model=PATH)"


def regime_tasks(data, train_data, opts: dict[str, Any], how: str) -> list[str]:
    """dynamics=hypernet: the task labels (nominal first), each with training transitions (one line if not)."""
    from robocl.offline.dataset import task_labels

    nominal = opts["nominal_label"]
    tasks = task_labels(data.labels(), nominal)
    if len(tasks) > opts["max_tasks"]:
        raise UsageError(f"dynamics=hypernet: the data holds {len(tasks)} regime labels ({', '.join(tasks[:8])}"
                         f"{', ...' if len(tasks) > 8 else ''}), more than train.max_tasks={opts['max_tasks']} "
                         "tasks; merge labels or raise train.max_tasks")
    trained = set(task_labels(train_data.labels(), nominal))
    missing = [label for label in tasks if label not in trained]
    if missing:
        raise UsageError(f"dynamics=hypernet: regime label(s) {', '.join(repr(m) for m in missing)} occur only in "
                         f"the validation data (held out {how.split(':')[0]}), so their task would never be "
                         "trained; record more episodes of them or lower train.val_fraction")
    return tasks


def task_errors(model, scale, tasks: list[str], nominal: str, val_data, horizon: int, fit_tasks: dict):
    """Validation errors of a multi-task model: the curve of each transition under its own task's embedding
    (segments cut at label changes), the nominal embedding's curve on all of it, and per task its counts
    and one-step error."""
    from robocl.offline.dataset import by_label
    from robocl.train.errors import horizon_errors

    index = {label: i for i, label in enumerate(tasks)}
    pieces = by_label(val_data.segments, nominal)
    own_curve = horizon_errors(model, scale, [p for _, p in pieces], horizon, [index[label] for label, _ in pieces])
    curves = {"trained model, each label's embedding": own_curve,
              NOMINAL_CURVE: horizon_errors(model, scale, val_data.segments, horizon, [0] * len(val_data.segments))}
    per_task = {}
    for i, label in enumerate(tasks):
        own = [p for lab, p in pieces if lab == label]
        one = horizon_errors(model, scale, own, 1, [i] * len(own))[0] if own else float("nan")
        per_task[label] = {"train_transitions": int((fit_tasks["train_tasks"] == i).sum()),
                           "val_transitions": int((fit_tasks["val_tasks"] == i).sum()), "val_dyn_mse": _num(one)}
    return curves, per_task


def simulator_runs_at(cfg: DictConfig, spec, period: float) -> bool:
    """Whether the robot's simulator model can be pretrained at `period` (the UGV's env takes `dt`)."""
    from robocl.robots.spec import nominal_env

    return abs(period - spec.dt) <= 1e-12 or "dt" in nominal_env(cfg.robot)[0]


def train_refiner(cfg: DictConfig, model, progress) -> dict[str, Any]:
    """`refiner=afm`: the AFM refiner for the trained model, its regimes simulated in that model (the
    robot's own simulator, if it has one, is robocl's robot, not this one), cached under runtime.cache_dir
    where `model=PATH ... methods=[mppi_afm]` and `robocl-eval methods=[afm]` find it."""
    from omegaconf import open_dict

    from robocl.refiners.afm_train import ensure_checkpoint

    with open_dict(cfg):
        cfg.refiner.data.simulator = "model"
    _, info, path = ensure_checkpoint(cfg.refiner, cfg.robot, model, log=progress.log, progress=progress)
    return {"checkpoint": str(path), **{k: v for k, v in info.items() if k != "history"}}


def _with_period(spec, period: float):
    from dataclasses import replace

    return replace(spec, dt=float(period))


def _num(v) -> float | None:
    import math

    v = float(v)
    return v if math.isfinite(v) else None


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.4g}"


def main(argv: list[str] | None = None) -> None:
    from robocl.cli.eval import rewrite_args

    args = rewrite_args(sys.argv[1:] if argv is None else list(argv))
    sys.exit(run_app("robocl-train", DESCRIPTION, train, config_name="train", argv=args, validate=validate))


if __name__ == "__main__":
    main()
