"""`robocl-run experiment=drag_continual`: the drag predictor learns new object categories as tasks.

Task 0 is cabinet_drag's training set (cabinets and drawer units) and its `drag_ms` model, taken
from the same cache (trained here only if it is not there). Task 1 is a new category (fridges by
default) with a training set of its own, generated from another seed; it is evaluated on
cabinet_drag's held-out-category split, task 0 on its held-out instances. Every strategy
(robocl.drag.continual) continues from the task-0 model on task 1 for `drag.continual.epochs`
stage-2 epochs; after each task the model is evaluated on both tasks, giving 2 x 2 matrices of
part_iou and epe per strategy, their forgetting and backward transfer, heatmaps and continual.md.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from robocl.build import checks as check
from robocl.drag.baselines import learned
from robocl.drag.continual import SETTINGS, STRATEGIES, StrategyConfig, make_strategy
from robocl.drag.datagen import load_index
from robocl.drag.dataset import load_split
from robocl.drag.evaluate import evaluate
from robocl.drag.model import DragPredictor
from robocl.drag.train import TrainConfig, load_checkpoint, train_two_stage
from robocl.errors import UsageError
from robocl.eval import continual as cm
from robocl.eval.progress import NullProgress
from robocl.eval.sink import ResultSink
from robocl.experiments.cabinet_drag import CACHE_VERSION, Spec, _hash, dataset, trained_model, workspace
from robocl.experiments.cabinet_drag import validate as validate_drag
from robocl.utils.io import atomic_write_text

# resume=true (robocl-run) reruns in the run directory: every training continues from its checkpoint in the
# cache (written atomically each epoch; a finished one is loaded), evaluations run again (deterministic)
RESUME = "checkpoints"

BASE_MODEL = "drag_ms"
METRICS = {"part_iou": True, "epe": False, "axis_err_deg": False}  # metric -> higher is better


def validate(cfg: DictConfig) -> tuple[Spec, dict[str, Any]]:
    """The cabinet_drag keys (task 0) and `drag.continual.*` (task 1 and the strategies)."""
    spec = validate_drag(cfg, accepted=STRATEGIES)

    def num(key: str, **kw: Any) -> Any:
        return check.number(cfg, f"drag.continual.{key}", **kw)

    cl = {
        "task_objects": num("task_objects", lo=1, integer=True),
        "epochs": num("epochs", lo=1, integer=True),
        "lr": num("lr", lo=0, lo_open=True),
        "strategy": StrategyConfig(l2_strength=num("l2_strength", lo=0), ewc_strength=num("ewc_strength", lo=0),
                                   fisher_samples=num("fisher_samples", lo=1, integer=True),
                                   coreset_drags=num("coreset_drags", lo=1, integer=True)),
    }
    if spec.data_dir:
        raise UsageError("drag.data_dir: drag_continual generates both tasks' data into the cache; set it to null")
    return spec, cl


def _task_names(spec: Spec) -> list[str]:
    return ["+".join(spec.data.train_categories), "+".join(spec.data.heldout_categories)]


def _scores(model: DragPredictor, tests: dict[str, Any]) -> dict[str, list[float]]:
    """metric -> [task 0, task 1] on the held-out splits."""
    res = [evaluate(learned(model), tests[s]) for s in ("test_instance", "test_category")]
    return {m: [float(r[m]) for r in res] for m in METRICS}


def run(cfg: DictConfig, run_dir: Path, progress: Any = None, sink: ResultSink | None = None) -> dict[str, Any]:
    spec, cl = validate(cfg)
    progress = progress or NullProgress()
    ws = workspace(cfg, spec, run_dir, progress)
    run_dir, cache, root0, index0, data_key = ws.run_dir, ws.cache, ws.root, ws.index, ws.data_key
    new_cats = spec.data.heldout_categories
    spec1 = replace(spec, data=replace(spec.data, objects=cl["task_objects"], heldout_objects=1, val_objects=0,
                                       train_categories=new_cats, seed=spec.data.seed + 1))
    root1 = dataset(spec1, cache, progress)
    index1 = load_index(root1)
    eval_seeds = {o["seed"] for o in index0["objects"] if o["split"] == "test_category"}
    if eval_seeds & {o["seed"] for o in index1["objects"] if o["split"] == "train"}:
        raise RuntimeError("task-1 training objects overlap the held-out category split")
    train0, train1 = load_split(root0, "train"), load_split(root1, "train")
    tests = {s: load_split(root0, s) for s in ("test_instance", "test_category")}
    if spec.eval_drags:
        tests = {s: d.subset(spec.eval_drags) for s, d in tests.items()}
    names = _task_names(spec)
    rows: list[dict[str, Any]] = []
    details: dict[str, dict[str, Any]] = {}
    n_runs = len(spec.seeds) * len(spec.methods)
    overall = progress.add_task("drag continual", total=n_runs, status="")
    for seed in spec.seeds:
        base, _ = trained_model(BASE_MODEL, seed, spec, train0, data_key, cache, progress)
        for d in (*tests.values(), train0, train1):
            d.attach_neighbors(base)
        before = _scores(base, tests)
        tcfg = TrainConfig(**{**asdict(spec.train), "stage1_epochs": 0, "stage2_epochs": cl["epochs"],
                              "stage2_lr": cl["lr"], "seed": seed})
        for name in spec.methods:
            scfg = replace(cl["strategy"], seed=seed)
            model = copy.deepcopy(base)
            key = _hash({"v": CACHE_VERSION, "base": data_key, "task1": _hash(index1["config"]),
                         "strategy": name, "cfg": {k: getattr(scfg, k) for k in SETTINGS[name]},
                         "train": asdict(tcfg), "model": asdict(base.cfg)})
            path = cache / f"drag-cl-{name}-s{seed}-{key}.pt"
            cached = load_checkpoint(path) if path.exists() else None
            if cached is not None and cached[1].get("complete"):
                model = cached[0]
                model.refinement = spec.refinement
                progress.log(f"{name} s{seed}: loaded {path}")
            else:  # consolidate task 0 (penalty anchor, Fisher, replay memory), then learn task 1
                strategy = make_strategy(name, scfg)
                strategy.consolidate(model, train0, tcfg)
                task = progress.add_task(f"task 1 {name} s{seed}", total=cl["epochs"], status="")
                train_two_stage(model, strategy.training_data(train1), tcfg, checkpoint=path,
                                penalty=strategy.penalty(),
                                on_epoch=lambda stage, losses, task=task: progress.update(
                                    task, advance=1, status=f"loss {losses['loss']:.2f}"))
            after = _scores(model, tests)
            matrices = {m: [before[m], after[m]] for m in METRICS}
            row: dict[str, Any] = {"method": name, "seed": seed, "task": "sequence"}
            for m, higher in METRICS.items():
                row[f"{m}_old"], row[f"{m}_new"] = after[m]
                row.update(cm.summarize_matrix(matrices[m], higher, prefix=f"{m}_"))
            rows.append(row)
            details[f"{name}/s{seed}"] = {"matrices": matrices}
            if sink is not None:
                sink.extra["continual"] = {"tasks": names, "runs": details}
                sink.add_run(row)
            progress.update(overall, advance=1, status=f"{name} part_iou {after['part_iou'][0]:.3f}/"
                                                         f"{after['part_iou'][1]:.3f}")
    plots = _reports(run_dir, details, names, rows)
    notes = [
        f"tasks: {names[0]} (cabinet_drag's training set and {BASE_MODEL} model), then {names[1]} "
        f"({spec1.data.objects} new training objects, {len(train1)} drags); evaluated on cabinet_drag's "
        "held-out instances (task 0) and held-out category (task 1).",
        "METRIC_old / METRIC_new: on task 0 / task 1 after learning task 1; R[i][j]: on task j after task i; "
        "forgetting > 0 and bwt < 0 mean task 0 got worse (for epe and axis_err_deg too: lower is better there).",
        f"wall time {time.time() - ws.t_start:.0f} s on {spec.threads} threads",
    ]
    summary = {r["method"]: {k: v for k, v in r.items() if isinstance(v, float)} for r in rows}
    return {"runs": [] if sink is not None else rows, "summary": summary, "notes": notes,
            "plots": [str(p) for p in plots]}


def _reports(run_dir: Path, details: dict[str, dict[str, Any]], names: list[str],
             rows: list[dict[str, Any]]) -> list[Path]:
    """continual.md (per-strategy summary and matrices of the first seed) and one heatmap per metric."""
    first: dict[str, dict[str, Any]] = {}
    for key, d in details.items():
        first.setdefault(key.rsplit("/", 1)[0], d)
    cols = [f"{m}_{t}" for m in METRICS for t in ("old", "new", "forgetting")]
    summary = {name: {c: float(np.mean([r[c] for r in rows if r["method"] == name and r.get(c) is not None]))
                      for c in cols} for name in first}
    parts = ["# drag_continual: new object categories as tasks", "",
             f"Tasks: {names[0]} (old, task 0), then {names[1]} (new, task 1). `_old`/`_new`: after task 1, "
             "on each task's held-out drags; forgetting > 0: task 0 got worse.", "",
             cm.markdown_summary(summary, cols), ""]
    for method, d in first.items():
        for m in METRICS:
            parts += [cm.markdown_matrix(d["matrices"][m], names, f"{method}: {m} R[i][j]"), ""]
    atomic_write_text(run_dir / "continual.md", "\n".join(parts) + "\n")
    plots = []
    for m, higher in METRICS.items():
        if first:
            plots.append(cm.plot_heatmaps({k: d["matrices"][m] for k, d in first.items()}, names,
                                          run_dir / f"heatmap_{m}.png", f"{m} after task i (rows) on task j (cols)",
                                          higher_is_better=higher))
    return plots
