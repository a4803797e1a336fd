"""`robocl-run experiment=cabinet_drag`: the part-level drag predictor end to end.

1. a drag dataset of procedurally generated cabinets (cached by its settings),
2. two-stage training of the multi-scale model (`drag_ms`) and the single-global-embedding
   ablation (`drag_global`) per seed (checkpoints cached and copied into the run directory),
3. epe (mm), part_iou, joint axis error on held-out instances and on the held-out category, for
   the models and the `rigid` and `nearest_part` baselines; inference time (2,048 points, 1 drag),
4. drag-MPC with each dynamics model opening drawers and doors of held-out cabinets with the
   physical gripper (`open_success`), with before/after renders.

Also callable without Hydra: `run(OmegaConf.create({...}), Path("out"))`.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from robocl.build import checks as check
from robocl.drag.baselines import Predictor, learned, nearest_part, rigid
from robocl.drag.compiled import compiled_forward
from robocl.drag.datagen import DatagenConfig, generate, load_index
from robocl.drag.dataset import DragSplit, load_split
from robocl.drag.evaluate import drag_scores, inference_timing, summarize_scores
from robocl.drag.model import DragModelConfig, DragPredictor
from robocl.drag.plots import plot_metric_bars, plot_training
from robocl.drag.refine import MaskRefinement
from robocl.drag.train import TrainConfig, load_checkpoint, save_checkpoint, train_two_stage
from robocl.errors import UsageError
from robocl.eval.markdown import markdown_table
from robocl.eval.paired import paired_difference, paired_success
from robocl.eval.progress import NullProgress
from robocl.eval.results import write_metrics_csv
from robocl.eval.sink import ResultSink
from robocl.utils.io import atomic_write_text

# resume=true (robocl-run) reruns in the run directory: every training continues from its checkpoint in the
# cache (written atomically each epoch; a finished one is loaded), evaluations run again (deterministic)
RESUME = "checkpoints"

LEARNED = {"drag_ms": True, "drag_global": False}  # method -> multiscale
METHODS = (*LEARNED, "nearest_part", "rigid")
MPC_METHODS = (*LEARNED, "nearest_part")
SPLIT_TASK = {"test_instance": "instance", "test_category": "category", "val": "val"}  # val: choose settings on it
CACHE_VERSION = 1
NOT_METRICS = ("method", "seed", "task", "drags", "threads", "points", "episodes")


@dataclass(frozen=True)
class Spec:
    methods: list[str]
    seeds: list[int]
    data: DatagenConfig
    train: TrainConfig
    data_dir: str | None
    eval_drags: int | None
    timing_repeats: int
    threads: int
    mpc: dict[str, Any]
    refinement: MaskRefinement
    compile: bool  # torch.compile the learned models for timing and the planner (robocl.drag.compiled)


def _num(cfg: DictConfig, key: str, **kw: Any) -> Any:
    return check.number(cfg, key, **kw)


def validate(cfg: DictConfig, accepted: tuple[str, ...] = METHODS) -> Spec:
    """Every `drag.*` key checked before any compute starts (one clear line on a bad value);
    `methods` must be among `accepted`."""
    methods = check.string_list(cfg, "methods")
    bad = [m for m in methods if m not in accepted]
    if bad:
        raise UsageError(f"methods: unknown {bad}; accepted: {list(accepted)}")
    seeds = check.int_list(cfg, "seeds")
    points = _num(cfg, "drag.points", lo=512, integer=True)
    data = DatagenConfig(
        objects=_num(cfg, "drag.objects", lo=1, integer=True),
        heldout_objects=_num(cfg, "drag.heldout_objects", lo=1, integer=True),
        val_objects=_num(cfg, "drag.val_objects", lo=0, integer=True),
        states=_num(cfg, "drag.states", lo=1, integer=True), drags=_num(cfg, "drag.drags", lo=1, integer=True),
        points=points, cameras=_num(cfg, "drag.cameras", lo=3, hi=6, integer=True),
        seed=_num(cfg, "drag.data_seed", lo=0, integer=True))
    train = TrainConfig(
        stage1_epochs=_num(cfg, "drag.stage1_epochs", lo=0, integer=True),
        stage2_epochs=_num(cfg, "drag.stage2_epochs", lo=0, integer=True),
        batch_size=_num(cfg, "drag.batch_size", lo=1, integer=True),
        lr=_num(cfg, "drag.lr", lo=0, lo_open=True), stage2_lr=_num(cfg, "drag.stage2_lr", lo=0, lo_open=True),
        embed_weight=_num(cfg, "drag.embed_weight", lo=0), iou_weight=_num(cfg, "drag.iou_weight", lo=0))
    eval_drags = OmegaConf.select(cfg, "drag.eval_drags")
    if eval_drags is not None:
        eval_drags = _num(cfg, "drag.eval_drags", lo=1, integer=True)
    mpc = {
        "episodes": _num(cfg, "drag.mpc.episodes", lo=0, integer=True),
        "max_steps": _num(cfg, "drag.mpc.max_steps", lo=1, integer=True),
        "population": _num(cfg, "drag.mpc.population", lo=2, integer=True),
        "iterations": _num(cfg, "drag.mpc.iterations", lo=1, integer=True),
        "max_drag": _num(cfg, "drag.mpc.max_drag", lo=0, lo_open=True),
        "renders": _num(cfg, "drag.mpc.renders", lo=0, integer=True),
    }
    refinement = MaskRefinement(iterations=_num(cfg, "drag.refine.iterations", lo=0, integer=True),
                                recentre=_num(cfg, "drag.refine.recentre", lo=0, integer=True),
                                sigma_xyz=_num(cfg, "drag.refine.sigma_xyz", lo=0, lo_open=True),
                                sigma_rgb=_num(cfg, "drag.refine.sigma_rgb", lo=0, lo_open=True))
    data_dir = OmegaConf.select(cfg, "drag.data_dir")
    threads = OmegaConf.select(cfg, "runtime.threads", default=2)
    return Spec(methods, seeds, data, train, str(data_dir) if data_dir else None, eval_drags,
                _num(cfg, "drag.timing_repeats", lo=1, integer=True), int(threads or 2), mpc, refinement,
                check.flag(cfg, "drag.compile"))


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _cache_dir(cfg: DictConfig, run_dir: Path) -> Path:
    root = OmegaConf.select(cfg, "runtime.cache_dir")
    return Path(str(root)) if root else run_dir / "cache"


def dataset(spec: Spec, cache: Path, progress: Any) -> Path:
    """The dataset directory: `drag.data_dir` as given, else generated once into the cache."""
    if spec.data_dir:
        load_index(Path(spec.data_dir))
        return Path(spec.data_dir)
    root = cache / f"drag-data-{_hash(asdict(spec.data))}"
    if (root / "index.json").exists():
        progress.log(f"drag dataset from cache {root}")
        return root
    total = spec.data.objects + 2 * spec.data.heldout_objects + spec.data.val_objects
    task = progress.add_task("drag dataset", total=total, status="")
    generate(root, spec.data, progress=lambda done, n: progress.update(task, completed=done), show_bar=False)
    return root


@dataclass(frozen=True)
class Workspace:
    run_dir: Path
    cache: Path
    root: Path  # the dataset
    index: dict[str, Any]
    data_key: str  # what trained models' cache keys depend on
    t_start: float


def workspace(cfg: DictConfig, spec: Spec, run_dir: Path, progress: Any) -> Workspace:
    """Run directory, threads, cache and the dataset (generated on first use) of a drag experiment."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(spec.threads)
    t_start = time.time()
    cache = _cache_dir(cfg, run_dir)
    root = dataset(spec, cache, progress)
    index = load_index(root)
    return Workspace(run_dir, cache, root, index, _hash(index["config"]) + _hash(index["splits"]), t_start)


def trained_model(name: str, seed: int, spec: Spec, train: DragSplit, data_key: str, cache: Path,
                  progress: Any) -> tuple[DragPredictor, list[dict[str, float]]]:
    """A trained variant from the cache, or trained now (checkpointed atomically every epoch; an
    unfinished checkpoint of the same settings resumes after its last finished epoch)."""
    model_cfg = DragModelConfig(multiscale=LEARNED[name])
    tcfg = TrainConfig(**{**asdict(spec.train), "seed": seed})
    key = _hash({"v": CACHE_VERSION, "data": data_key, "model": asdict(model_cfg), "train": asdict(tcfg)})
    path = cache / f"drag-{name}-{key}.pt"
    finished = 0
    if path.exists():
        model, state = load_checkpoint(path)
        if state.get("complete"):
            progress.log(f"{name} seed {seed}: loaded {path}")
            model.refinement = spec.refinement
            return model, state["history"]
        finished = len(state["history"])
        progress.log(f"{name} seed {seed}: resuming {path} after epoch {finished}")
    torch.manual_seed(seed)
    model = DragPredictor(model_cfg)
    epochs = tcfg.stage1_epochs + tcfg.stage2_epochs
    task = progress.add_task(f"train {name} s{seed}", total=epochs, completed=finished, status="")

    def on_epoch(stage: int, losses: dict[str, float]) -> None:
        progress.update(task, advance=1, status=f"stage {stage} epe {losses['epe_cm']:.2f} cm")

    history = train_two_stage(model, train, tcfg, checkpoint=path, on_epoch=on_epoch)
    model.refinement = spec.refinement  # inference-time post-processing: not in the cache key
    return model, history


def open_against_heuristic(opened: dict[tuple[str, int], list[bool]], seeds: list[int]) -> dict[str, dict[str, Any]]:
    """Each learned method's drag-MPC successes against nearest_part's on the same episodes (all
    seeds pooled): discordant episodes and the exact McNemar p-value (robocl.eval.paired)."""
    out = {}
    for method in LEARNED:
        if not all((m, s) in opened for m in (method, "nearest_part") for s in seeds):
            continue
        heuristic = [x for s in seeds for x in opened[("nearest_part", s)]]
        ours = [x for s in seeds for x in opened[(method, s)]]
        test = paired_success(np.array(heuristic), np.array(ours))
        out[method] = {**asdict(test), "verdict": test.verdict()}
    return out


# per-drag scores the ablation compares, and whether higher is better
ABLATION_METRICS = {"epe": False, "part_iou": True, "axis_err_deg": False, "joint_type_ok": True}


def ablation(scores: dict[tuple[str, int, str], dict[str, torch.Tensor]], seeds: list[int],
             splits: list[str]) -> dict[str, dict[str, Any]]:
    """drag_global against drag_ms on the same drags, per "task/metric": the mean difference, its 95%
    bootstrap interval over held-out objects (robocl.eval.paired; per-drag scores averaged over
    seeds first) and the verdict ('worse' = the interval excludes zero on the bad side)."""
    out = {}
    for split in splits:
        objects = scores[(next(iter(LEARNED)), seeds[0], split)]["object"].numpy()
        for metric, higher in ABLATION_METRICS.items():
            a, b = (torch.stack([scores[(m, s, split)][metric] for s in seeds]).nanmean(0).numpy() for m in LEARNED)
            d = paired_difference(a, b, objects)
            out[f"{SPLIT_TASK[split]}/{metric}"] = {**asdict(d), "verdict": d.verdict(higher)}
    return out


def write_iou_by_size(scores: dict[tuple[str, int, str], dict[str, torch.Tensor]], path: Path) -> dict[str, Any]:
    """iou_by_size.md: each learned method's held-out part_iou by the dragged part's true moving-point count
    (seeds pooled), where the mask is weak: small drawers. Returns {method: {task: rows}} for results.json."""
    from robocl.drag.evaluate import iou_by_size

    pooled: dict[tuple[str, str], dict[str, list[torch.Tensor]]] = {}
    for (method, _seed, split), per_drag in scores.items():
        into = pooled.setdefault((method, SPLIT_TASK[split]), {"moving": [], "part_iou": []})
        into["moving"].append(per_drag["moving"])
        into["part_iou"].append(per_drag["part_iou"])
    table: dict[str, dict[str, Any]] = {}
    lines = ["# part_iou by the dragged part's size", "",
             "Mean held-out `part_iou` of the drags whose true moving points fall in each range (seeds pooled).", ""]
    for (method, task), d in pooled.items():
        rows = iou_by_size({k: torch.cat(v) for k, v in d.items()})
        table.setdefault(method, {})[task] = rows
        lines += [f"## {method}, {task}", "", markdown_table(["true moving points", "drags", "part_iou"],
                                                           [[r["moving_points"], r["drags"], f"{r['part_iou']:.3f}"]
                                                            for r in rows]), ""]
    if table:
        atomic_write_text(path, "\n".join(lines))
    return table


def write_ablation(result: dict[str, dict[str, Any]], seeds: list[int], path: Path) -> list[str]:
    """ablation.md (one row per task and metric); returns one note line per task."""
    lines = ["# Multi-scale drag embedding ablation: drag_global - drag_ms on the same drags", "",
             f"seeds {seeds}; per-drag scores averaged over seeds, then per object; 95% bootstrap interval "
             "over held-out objects (2,000 resamples).", ""]
    per_task: dict[str, list[str]] = defaultdict(list)
    rows = []
    for key, d in result.items():
        task, metric = key.split("/")
        interval = f"[{d['low']:+.3g}, {d['high']:+.3g}]"
        rows.append([task, metric, f"{d['mean_a']:.4g}", f"{d['mean_b']:.4g}", f"{d['diff']:+.3g}", interval,
                     d["objects"], d["verdict"]])
        per_task[task].append(f"{metric} {d['verdict']} ({d['diff']:+.3g} {interval})")
    lines.append(markdown_table(["task", "metric", "drag_ms", "drag_global", "difference", "95% interval", "objects",
                                 "drag_global is"], rows))
    atomic_write_text(path, "\n".join(lines) + "\n")
    return [f"ablation on {task} (drag_global - drag_ms, 95% interval over objects): " + "; ".join(v)
            for task, v in per_task.items()]


def _mpc_rows(method: str, seed: int, dynamics_for: Any, spec: Spec, heldout: list[dict], run_dir: Path,
              progress: Any) -> tuple[dict[str, Any], list[Path], list[bool]]:
    """Drag-MPC episodes of one method: its summary row, the renders, and success per episode."""
    from robocl_envs.articulated import CabinetEnv, sample_cabinet

    from robocl.drag.mpc import DragMPC, run_episode, sample_open_task

    m = spec.mpc
    env = CabinetEnv(cameras=spec.data.cameras, image_size=(spec.data.image_size, spec.data.image_size),
                     max_drag=m["max_drag"])
    mpc = DragMPC(dynamics_for(m["max_drag"]), population=m["population"], iterations=m["iterations"], seed=seed)
    task_id = progress.add_task(f"mpc {method} s{seed}", total=m["episodes"], status="")
    results, renders = [], []
    try:
        for i in range(m["episodes"]):
            obj = heldout[i % len(heldout)]
            task = sample_open_task(sample_cabinet(obj["seed"], obj["category"]), np.random.default_rng([seed, i]),
                                    max_drag=m["max_drag"], drags=m["max_steps"])
            png = run_dir / "renders" / f"open_{method}_s{seed}_{i}.png" if i < m["renders"] else None
            r = run_episode(env, task, mpc, max_steps=m["max_steps"], n_points=spec.data.points, seed=1000 * seed + i,
                            render_to=png, label=method)
            results.append({"episode": i, "part": task.part, **r})
            # one row per episode, rewritten after each (an interrupted run keeps the finished ones)
            write_metrics_csv(run_dir / f"open_episodes_{method}_s{seed}.csv", results)
            if png is not None:
                renders.append(png)
            rate = np.mean([x["success"] for x in results])
            progress.update(task_id, advance=1, status=f"open_success {rate:.2f}")
    finally:
        env.close()
    row: dict[str, Any] = {"method": method, "seed": seed, "task": "open_instance",
                           "open_success": float(np.mean([r["success"] for r in results])) if results else None,
                           "drags_mean": float(np.mean([r["steps"] for r in results])) if results else None,
                           "plan_ms_median": float(np.median([r["plan_ms_median"] for r in results])) if results
                           else None, "episodes": len(results)}
    for k in range(1, m["max_steps"]):  # success within fewer drags than allowed
        row[f"open_success_at{k}"] = (float(np.mean([r["solved_at"] is not None and r["solved_at"] <= k
                                                     for r in results])) if results else None)
    for kind in ("drawer", "door"):
        sel = [r for r in results if r["kind"] == kind]
        row[f"open_success_{kind}"] = float(np.mean([r["success"] for r in sel])) if sel else None
        errs = [r["error"] for r in sel]
        scale = 1000.0 if kind == "drawer" else 180.0 / math.pi
        row[f"open_error_{kind}_{'mm' if kind == 'drawer' else 'deg'}"] = (
            float(np.median(errs)) * scale if errs else None)
    return row, renders, [bool(r["success"]) for r in results]


def _summary(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per method: held-out-instance metrics by their plain names, held-out category with a
    `_category` suffix, open_success and timing, each a mean over seeds."""
    acc: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in runs:
        suffix = "_category" if row["task"] == "category" else ""
        for k, v in row.items():
            if k in NOT_METRICS or not isinstance(v, (int, float)) or isinstance(v, bool):
                continue
            if v == v:
                acc[row["method"]][k + suffix].append(float(v))
    return {m: {k: float(np.mean(v)) for k, v in metrics.items()} for m, metrics in acc.items()}


def run(cfg: DictConfig, run_dir: Path, progress: Any = None, sink: ResultSink | None = None) -> dict[str, Any]:
    """The whole experiment. With a `sink` (as from `robocl-run`) every finished row is on disk at
    once (an interrupted run keeps its evaluations) and the returned `runs` is empty; without one,
    the rows are returned."""
    spec = validate(cfg)
    progress = progress or NullProgress()
    ws = workspace(cfg, spec, run_dir, progress)
    run_dir, cache, root, index, data_key, t_start = ws.run_dir, ws.cache, ws.root, ws.index, ws.data_key, ws.t_start
    train = load_split(root, "train")
    tests = {s: load_split(root, s) for s in SPLIT_TASK if index["splits"].get(s, {}).get("drags", 0)}
    if spec.eval_drags:
        tests = {s: d.subset(spec.eval_drags) for s, d in tests.items()}
    runs: list[dict[str, Any]] = []

    def record(row: dict[str, Any]) -> None:
        runs.append(row)
        if sink is not None:
            sink.add_run(row)
    notes: list[str] = []
    plots: list[Path] = []
    histories: dict[str, list[dict[str, float]]] = {}
    models: dict[tuple[str, int], DragPredictor] = {}
    for seed in spec.seeds:
        for name in (m for m in spec.methods if m in LEARNED):
            model, hist = trained_model(name, seed, spec, train, data_key, cache, progress)
            models[(name, seed)] = model
            histories[f"{name} s{seed}"] = hist
            save_checkpoint(run_dir / "checkpoints" / f"{name}_s{seed}.pt", model, hist, {"complete": True})
    if models:
        first = next(iter(models.values()))
        for d in tests.values():
            d.attach_neighbors(first)
    table: dict[str, dict[str, dict[str, float]]] = {SPLIT_TASK[s]: {} for s in tests}
    scores: dict[tuple[str, int, str], dict[str, torch.Tensor]] = {}
    eval_task = progress.add_task("evaluate", total=len(spec.seeds) * len(spec.methods) * len(tests), status="")
    for seed in spec.seeds:
        for method in spec.methods:
            predict: Predictor = (learned(models[(method, seed)]) if method in LEARNED
                                  else {"rigid": rigid, "nearest_part": nearest_part}[method])
            for split, data in tests.items():
                per_drag = drag_scores(predict, data)
                if method in LEARNED:
                    scores[(method, seed, split)] = per_drag
                metrics = summarize_scores(per_drag)
                row = {"method": method, "seed": seed, "task": SPLIT_TASK[split], **metrics}
                record(row)
                table[SPLIT_TASK[split]].setdefault(method, metrics)
                progress.update(eval_task, advance=1, status=f"{method} {SPLIT_TASK[split]} epe {metrics['epe']:.1f}")
    by_size = write_iou_by_size(scores, run_dir / "iou_by_size.md")
    ablation_result = ablation(scores, spec.seeds, list(tests)) if all(m in spec.methods for m in LEARNED) else {}
    if ablation_result:
        notes += write_ablation(ablation_result, spec.seeds, run_dir / "ablation.md")
    # inference time of one drag on a 2,048-point cloud (the acceptance figure), on `threads` cores
    cloud = tests["test_instance"]
    compiles = spec.compile  # the planner compiles too, unless compiling failed here (no C++ compiler)
    for (name, seed), model in models.items():
        if seed != spec.seeds[0]:
            continue
        if spec.compile:
            progress.log(f"compiling {name} for inference (once per input shape; about a minute on 2 cores)")
        t = inference_timing(model, cloud.points[0], cloud.colors[0], cloud.start[0], cloud.vec[0],
                             repeats=spec.timing_repeats, use_compile=spec.compile)
        record({"method": name, "seed": seed, "task": "timing", **t})
        compiles = compiles and t.get("compiled") == 1.0
    # drag-MPC on held-out cabinets
    heldout = [o for o in index["objects"] if o["split"] == "test_instance"]
    renders: list[Path] = []
    opened: dict[tuple[str, int], list[bool]] = {}
    if spec.mpc["episodes"] > 0:
        from robocl.drag.mpc import LearnedDynamics, NearestPartDynamics

        for seed in spec.seeds:
            for method in (m for m in spec.methods if m in MPC_METHODS):
                if method in LEARNED:
                    model = models[(method, seed)]

                    forward = compiled_forward(model) if compiles else model

                    def dyn(max_drag: float, model: DragPredictor = model, forward: Any = forward) -> LearnedDynamics:
                        return LearnedDynamics(model, max_drag, forward)
                else:
                    def dyn(max_drag: float) -> NearestPartDynamics:
                        return NearestPartDynamics(max_drag)
                row, pngs, opened[(method, seed)] = _mpc_rows(method, seed, dyn, spec, heldout, run_dir, progress)
                record(row)
                renders += pngs
    open_paired = open_against_heuristic(opened, spec.seeds)
    notes += [f"open_success {m} vs nearest_part on the same {d['episodes']} episodes: {d['b_only']} opened by "
              f"{m} only, {d['a_only']} by nearest_part only; exact McNemar p = {d['p_value']:.3g} "
              f"({m}: {d['verdict']})" for m, d in open_paired.items()]
    plots.append(plot_metric_bars(table, ["epe", "part_iou", "axis_err_deg"], run_dir / "drag_metrics.png"))
    if histories:
        plots.append(plot_training(histories, run_dir / "drag_training.png"))
    notes += [
        "epe: mean end-point error of per-point displacement over all points of the cloud, mm; "
        "part_iou: IoU of predicted vs true moving-point mask per drag (both empty = 1), mean over drags; "
        "axis_err_deg: sign-invariant joint axis angle over drags that start on a movable part.",
        "task=instance: held-out object instances of the training categories; task=category: held-out "
        f"category {index['heldout_categories']}; baselines use the renderer's segmentation labels.",
        "open_success: fraction of episodes (held-out cabinets, start closed, one random part, goal given as "
        "the part's observed points at the target opening) where the part ends within tolerance "
        "(2 cm / 5 deg) after at most drag.mpc.max_steps physical handle drags and no other part moved > 2 cm; "
        "open_success_atK: the same within K drags.",
        f"dataset {root}: {json.dumps({s: v['drags'] for s, v in index['splits'].items()})} drags; "
        f"wall time {time.time() - t_start:.0f} s on {spec.threads} threads",
    ]
    return {"runs": [] if sink is not None else runs, "summary": _summary(runs), "notes": notes,
            "plots": [str(p) for p in plots + renders], "ablation": ablation_result, "open_paired": open_paired,
            "extra": {"iou_by_size": by_size}}
