"""Runner for `cl_*` experiments: every continual strategy learns the same task sequence.

For each seed and strategy: learn tasks 0..T-1 in order (offline, per-task data; old data is
not kept unless the strategy keeps it), evaluating the dynamics model on every task's held-out
data after each task (accuracy matrix) and every `cl.eval_every` iterations (stability gap),
and the planner on tasks (success matrix: the diagonal and the last row by default). Writes
results.json (one run row per strategy and seed, matrices under `continual`), continual.md,
and heatmap/curve PNGs. Also times planning with the hypernetwork (cached weights) against a
plain MLP of the same target size, side by side.
"""

from __future__ import annotations

import copy
import time
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from robocl.build import checks as check
from robocl.build.factory import build
from robocl.build.models import make_codec
from robocl.continual.base import ContinualStrategy
from robocl.continual.trainable import TrainableStrategy
from robocl.control import Controller
from robocl.dynamics.base import DynamicsModel, Transitions
from robocl.dynamics.mlp import GaussianMLP
from robocl.errors import UsageError
from robocl.eval import continual as cm
from robocl.eval.markdown import markdown_table
from robocl.eval.paired import seed_interval
from robocl.eval.sink import ResultSink
from robocl.experiments.cl_robots import make_target
from robocl.experiments.fanout import fan_out
from robocl.parallel.units import Unit, UnitContext, UnitProgress
from robocl.refiners.base import Refiner
from robocl.utils.imports import load_callable
from robocl.utils.io import atomic_write_text

PLANNER_ROWS = ("none", "last", "diag_last", "all")
SUMMARY_METRICS = ["avg_acc", "forgetting", "bwt", "fwt", "min_acc", "wc_acc", "dyn_mse_avg", "dyn_forgetting",
                   "plan_success_final", "plan_success_old", "plan_forgetting", "memory_floats",
                   "memory_growth_per_task", "train_s", "wall_s"]


# ---- configuration ------------------------------------------------------------------------------
def strategy_node(cfg: DictConfig, name: str) -> DictConfig:
    """configs/continual/<name>.yaml, with `cl.train` (shared) and `cl.overrides.<name>` merged in."""
    path = resources.files("robocl_configs").joinpath("continual", f"{name}.yaml")
    if not path.is_file():
        names = sorted(p.name[:-5] for p in resources.files("robocl_configs").joinpath("continual").iterdir()
                       if p.name.endswith(".yaml"))
        raise UsageError(f"cl.strategies: {name!r} has no config; accepted: {', '.join(names)}")
    node = OmegaConf.load(str(path))
    shared = OmegaConf.select(cfg, "cl.train") or {}
    own = OmegaConf.select(cfg, f"cl.overrides.{name}") or {}
    return OmegaConf.merge(node, shared, own)


def validate(cfg: DictConfig) -> dict[str, Any]:
    """Everything checked before compute starts."""
    check.check_common(cfg)
    strategies = check.string_list(cfg, "cl.strategies")
    nodes = {s: strategy_node(cfg, s) for s in strategies}
    if any(str(n.get("model", "mlp")) == "hypernet" for n in nodes.values()) and \
            OmegaConf.select(cfg, "dynamics.kind") != "hypernet":
        raise UsageError(f"dynamics={OmegaConf.select(cfg, 'dynamics.kind')}: cl runs with hypercrl need "
                         "dynamics=hypernet (its `target` sizes also size the baselines' MLP)")
    if OmegaConf.select(cfg, "dynamics.target") is None:
        raise UsageError("dynamics.target: missing; cl runs need dynamics=hypernet (target hidden_size/layers)")
    tasks = check.get(cfg, "cl.tasks")
    if not isinstance(tasks, (list, ListConfig)) or len(tasks) < 2:
        raise UsageError("cl.tasks: must be a list of at least 2 tasks, each {name: str, params: {...}}")
    target = make_target(cfg)
    names = []
    for i, task in enumerate(tasks):
        if not isinstance(task, DictConfig) or not isinstance(task.get("name"), str):
            raise UsageError(f"cl.tasks[{i}]: must be {{name: str, params: {{...}}}}")
        names.append(task.name)
        target.check(_params(task), f"cl.tasks[{i}].params")
    if str(check.get(cfg, "cl.plan.planner")) != str(cfg.planner.kind):
        raise UsageError(f"cl.plan.planner={cfg.cl.plan.planner}: planner={cfg.planner.kind} configures "
                         f"{cfg.planner.kind}; set both to the same planner")
    rows = str(check.get(cfg, "cl.plan.rows"))
    if rows not in PLANNER_ROWS:
        raise UsageError(f"cl.plan.rows={rows!r}: accepted: {', '.join(PLANNER_ROWS)}")
    for key in ("cl.data.episodes", "cl.data.steps", "cl.data.test_episodes"):
        check.number(cfg, key, lo=1, integer=True)
    check.number(cfg, "cl.eval_every", lo=0, integer=True)
    check.number(cfg, "cl.timing.reps", lo=0, integer=True)
    return {"strategies": strategies, "nodes": nodes, "tasks": [_params(t) for t in tasks], "names": names,
            "target": target, "seeds": check.int_list(cfg, "seeds"), "plan_rows": rows}


def _params(task: DictConfig) -> dict[str, Any]:
    p = task.get("params") or {}
    return OmegaConf.to_container(p, resolve=True) if isinstance(p, DictConfig) else dict(p)


# ---- models -----------------------------------------------------------------------------------
def build_model(cfg: DictConfig, kind: str, seed: int) -> DynamicsModel:
    codec = make_codec(cfg)
    torch.manual_seed(seed)
    if kind == "hypernet":
        node = copy.deepcopy(cfg.dynamics)
        node.init_seed = seed
        return build(node, "dynamics", codec=codec)
    target = cfg.dynamics.target
    return GaussianMLP(codec, hidden_size=int(target.hidden_size), hidden_layers=int(target.hidden_layers))


def count_floats(obj: Any) -> int:
    """Floats held in a (nested) state dict: what a strategy keeps between tasks."""
    if isinstance(obj, torch.Tensor):
        return obj.numel()
    if isinstance(obj, dict):
        return sum(count_floats(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(count_floats(v) for v in obj)
    return 0


# ---- evaluation -------------------------------------------------------------------------------
class DynamicsEvaluator:
    """Normalized one-step error on each task's held-out data: nMSE_j = MSE_j / Var_j (1 - R^2).

    Target dimensions are first made commensurate (each divided by its std over the pooled
    held-out data of all tasks); then task j's squared error is divided by task j's own target
    variance, so 0 = perfect, 1 = no better than predicting task j's mean. Dimensions that barely
    move in a task (lateral slip on grippy floors) weigh little there; accuracy = 1 - nMSE.
    """

    def __init__(self, codec: Any, tests: list[Transitions]) -> None:
        self.codec = codec
        self.tests = tests
        truth = [codec.targets(t.states, t.next_states) for t in tests]
        self.scale = torch.cat(truth).std(0).clamp_min(1e-8)
        self.truth = [t / self.scale for t in truth]
        self.variance = [float((t - t.mean(0)).pow(2).mean(0).sum()) for t in self.truth]

    @torch.inference_mode()
    def errors(self, strategy: ContinualStrategy) -> list[float]:
        out = []
        model = strategy.model
        for j, (test, truth, var) in enumerate(zip(self.tests, self.truth, self.variance)):
            with _evaluating(strategy, j, test):
                pred, _ = model.predict(test.states, test.actions)
            err = self.codec.targets(test.states, pred) / self.scale - truth
            out.append(float(err.pow(2).mean(0).sum()) / var)
        return out


def _evaluating(strategy: ContinualStrategy, task_id: int, data: Transitions):
    from contextlib import nullcontext

    return strategy.evaluating(task_id, data) if isinstance(strategy, TrainableStrategy) else nullcontext()


def plan_success(cfg: DictConfig, spec: dict[str, Any], strategy: ContinualStrategy, env: Any, task: int,
                 seed: int) -> float:
    """Planner (frozen model) success on task `task` with the strategy's model pointed at that task."""
    target = spec["target"]
    target.set_regime(env, spec["tasks"][task])
    model = strategy.model
    cost = target.make_cost()
    planner_factory = load_callable(f"robocl.build.planners:{cfg.cl.plan.planner}")
    test = spec["_tests"][task]
    with _evaluating(strategy, task, test):
        planner = planner_factory(cfg.planner, dynamics=model.step, cost=cost, robot=cfg.robot, seed=seed,
                                  reset_particles=model.reset_particles)
        controller = Controller(model, planner, ContinualStrategy(model), Refiner(),
                                safe_action=np.asarray(cfg.robot.safe_action, float))
        return target.planner_success(env, controller, cost, spec["tasks"][task], seed)


def planning_timing(cfg: DictConfig, reps: int, seed: int = 0) -> dict[str, float]:
    """Plan time of the hypernetwork (cached weights) vs a plain MLP of the same target size.

    Same planner config, same state; the two planners alternate call by call so CPU load
    affects both alike. Ratios are hypernet / MLP.
    """
    hnet = build_model(cfg, "hypernet", seed).eval()
    mlp = build_model(cfg, "mlp", seed).eval()
    cost = make_target(cfg).make_cost()
    if hasattr(cost, "set_goal"):
        cost.set_goal(torch.ones(3))  # each cost keeps the leading dims it uses
    factory = load_callable(f"robocl.build.planners:{cfg.cl.plan.planner}")
    planners = {name: factory(cfg.planner, dynamics=m.step, cost=cost, robot=cfg.robot, seed=seed,
                              reset_particles=m.reset_particles) for name, m in (("hypernet", hnet), ("mlp", mlp))}
    state = torch.zeros(int(make_codec(cfg).state_dim))
    times: dict[str, list[float]] = {"hypernet": [], "mlp": []}
    warm = max(5, reps // 10)
    for i in range(reps + warm):
        order = ("hypernet", "mlp") if i % 2 else ("mlp", "hypernet")
        for name in order:
            t0 = time.perf_counter()
            planners[name].plan(state)
            if i >= warm:
                times[name].append((time.perf_counter() - t0) * 1e3)
    out = {"reps": reps, "target_params": sum(p.numel() for p in mlp.parameters()),
           "hypernet_params": sum(p.numel() for p in hnet.parameters())}
    for name, values in times.items():
        out[f"{name}_ms_median"] = float(np.median(values))
        out[f"{name}_ms_p95"] = float(np.percentile(values, 95))
    out["ratio_median"] = out["hypernet_ms_median"] / out["mlp_ms_median"]
    out["ratio_p95"] = out["hypernet_ms_p95"] / out["mlp_ms_p95"]
    return out


# ---- one strategy through the sequence --------------------------------------------------------
def run_strategy(cfg: DictConfig, spec: dict[str, Any], name: str, seed: int, data: dict[str, list[Transitions]],
                 env: Any, progress, evaluator: DynamicsEvaluator) -> tuple[dict[str, Any], dict[str, Any]]:
    node = spec["nodes"][name]
    model = build_model(cfg, str(node.get("model", "mlp")), seed)
    model.fit_normalizers(data["train"][0])  # one fixed normalization for the whole sequence
    strategy = build(node, "continual", model=model, seed=seed)
    T = len(spec["tasks"])
    R = np.full((T, T), np.nan)
    P = np.full((T, T), np.nan)
    baseline = evaluator.errors(strategy)
    curve = cm.ContinualCurve()
    if isinstance(strategy, TrainableStrategy):
        strategy.set_evaluation(int(cfg.cl.eval_every),
                                lambda it: curve.add(it, evaluator.errors(strategy)))
    bar = progress.add_task(f"{name} s{seed}", total=T, status="")
    memory = []
    t0 = time.perf_counter()
    train_s = 0.0
    for i in range(T):
        progress.update(bar, status=f"learning {spec['names'][i]}")
        t_learn = time.perf_counter()
        strategy.begin_task(i)
        strategy.learn_task(data["train"][i])
        strategy.end_task()
        train_s += time.perf_counter() - t_learn
        it = getattr(strategy, "iteration", i + 1)
        R[i] = evaluator.errors(strategy)
        curve.add(it, R[i])
        curve.task_ends.append(it)
        memory.append(count_floats(strategy.state_dict()))
        rows = spec["plan_rows"]
        cols = (range(T) if rows == "all" or (i == T - 1 and rows != "none")
                else [i] if rows == "diag_last" else [])
        for j in cols:
            progress.update(bar, status=f"planning on {spec['names'][j]}")
            P[i, j] = plan_success(cfg, spec, strategy, env, j, seed)
        progress.update(bar, completed=i + 1)
    wall_s = time.perf_counter() - t0
    acc = 1.0 - R
    row: dict[str, Any] = {"method": name, "seed": seed, "task": str(cfg.experiment_name)}
    row.update(cm.summarize_matrix(acc, True, baseline=[1.0 - b for b in baseline], curve=_acc_curve(curve)))
    dyn = cm.summarize_matrix(R, False)
    row.update({"dyn_mse_avg": dyn["avg_acc"], "dyn_forgetting": dyn["forgetting"], "dyn_bwt": dyn["bwt"]})
    last = P[-1]
    if np.isfinite(last).all():
        row["plan_success_final"] = float(last.mean())
        row["plan_success_old"] = float(last[:-1].mean())
        diag = np.diag(P)[:-1]
        if np.isfinite(diag).all():
            row["plan_forgetting"] = float(np.mean(diag - last[:-1]))
    row["memory_floats"] = memory[-1]
    row["memory_growth_per_task"] = float(np.mean(np.diff(memory))) if T > 1 else 0.0
    row["train_s"] = train_s  # learning only (with its continual evaluations)
    row["wall_s"] = wall_s  # learning, evaluation and planner episodes
    detail = {"dyn_mse": R.tolist(), "plan_success": P.tolist(), "baseline_mse": baseline,
              "curve_mse": curve.to_dict(), "memory_floats": memory}
    return row, detail


def _acc_curve(curve: cm.ContinualCurve) -> cm.ContinualCurve:
    out = cm.ContinualCurve(list(curve.iterations), [[1.0 - v for v in vals] for vals in curve.values],
                            list(curve.task_ends))
    return out


# ---- the job ---------------------------------------------------------------------------------
def collect_tasks(spec: dict[str, Any], cfg: DictConfig, seed: int, env: Any, progress) -> dict[str, list]:
    d = cfg.cl.data
    train, test = [], []
    bar = progress.add_task(f"data s{seed}", total=len(spec["tasks"]), status="")
    for j, params in enumerate(spec["tasks"]):
        spec["target"].set_regime(env, params)
        train.append(spec["target"].collect(env, int(d.episodes), int(d.steps), seed=seed * 1000 + j))
        test.append(spec["target"].collect(env, int(d.test_episodes), int(d.steps), seed=seed * 1000 + 500 + j))
        progress.update(bar, completed=j + 1, status=spec["names"][j])
    return {"train": train, "test": test}


def units(spec: dict[str, Any]) -> list[Unit]:
    """One unit per (seed, strategy): a strategy's whole pass through the task sequence."""
    return [Unit(f"{name}|s{seed}", {"strategy": name, "seed": seed}, f"{name} s{seed}")
            for seed in spec["seeds"] for name in spec["strategies"]]


def run_unit(shared: dict[str, Any], params: dict[str, Any], ctx: UnitContext) -> dict[str, Any]:
    """One strategy through the sequence on one seed's data (collected once, before fan-out)."""
    cfg, spec, seed = shared["cfg"], dict(shared["spec"]), params["seed"]
    data = shared["data"][seed]
    spec["_tests"] = data["test"]
    evaluator = DynamicsEvaluator(make_codec(cfg), data["test"])
    row, detail = run_strategy(cfg, spec, params["strategy"], seed, data, spec["target"].make_env(),
                               UnitProgress(ctx), evaluator)
    ctx.log(f"{params['strategy']} s{seed}: avg_acc {row['avg_acc']:.4f} forgetting {row['forgetting']:.4f}")
    return {"rows": [row], "detail": detail}


def run(cfg: DictConfig, run_dir: Path, progress, sink: ResultSink) -> None:
    spec = validate(cfg)
    names = spec["names"]
    reps = int(cfg.cl.timing.reps)
    if reps and any(str(n.get("model")) == "hypernet" for n in spec["nodes"].values()):
        progress.log("timing planning: hypernetwork (cached weights) vs plain MLP of the same target size")
        timing = planning_timing(cfg, reps)
        sink.extra["planning_timing"] = timing
        progress.log(f"plan ms median/p95: hypernet {timing['hypernet_ms_median']:.2f}/{timing['hypernet_ms_p95']:.2f}"
                     f", mlp {timing['mlp_ms_median']:.2f}/{timing['mlp_ms_p95']:.2f}, ratio "
                     f"{timing['ratio_median']:.3f}/{timing['ratio_p95']:.3f}")
    details: dict[str, dict[str, Any]] = {}
    sink.extra["continual"] = {"tasks": names, "runs": details,
                               "metric": "dyn: one-step nMSE = MSE/Var per task (1 - R^2); acc = 1 - nMSE"}

    def build_shared(todo: list[Unit]) -> dict[str, Any]:
        """The tasks' data, collected once per seed that still has units to run, for every strategy."""
        env = spec["target"].make_env()
        seeds = [s for s in spec["seeds"] if any(u.params["seed"] == s for u in todo)]
        return {"cfg": cfg, "spec": spec, "data": {s: collect_tasks(spec, cfg, s, env, progress) for s in seeds}}

    def on_result(result) -> None:
        for row in result.rows:
            progress.log(f"{row['method']} s{row['seed']}: avg_acc {row['avg_acc']:.4f} forgetting "
                         f"{row['forgetting']:.4f} plan_old {row.get('plan_success_old', float('nan')):.3f}")

    plan = units(spec)
    ledger = fan_out(cfg, run_dir, progress, sink, plan, run_unit, None, on_result=on_result,
                     build_shared=build_shared)
    details.update({key.replace("|", "/"): detail for key, detail in ledger.details(plan).items()})
    summary = write_reports(run_dir, sink, names, OmegaConf.select(cfg, "dynamics.embedding_dim"))
    print(summary + f"\n\nreport: {run_dir / 'continual.md'}\n")


def write_reports(run_dir: Path, sink: ResultSink, names: list[str], embedding_dim: int | None) -> str:
    """continual.md (summary, acceptance ratios, matrices), heatmaps and curves for the first seed."""
    doc = sink.flush()
    summary = doc["summary"]
    details = sink.extra["continual"]["runs"]
    first = {}
    for key, d in details.items():
        method, _ = key.rsplit("/", 1)
        first.setdefault(method, d)
    metrics = [m for m in SUMMARY_METRICS if any(m in v for v in summary.values())]
    parts = [f"# {doc['experiment']}: continual dynamics learning", "",
             "Tasks: " + ", ".join(names), "",
             "acc = 1 - nMSE; nMSE = one-step MSE / target variance of the task (dims scaled by their "
             "pooled std); dyn_* in nMSE.",
             "", cm.markdown_summary(summary, metrics), ""]
    checks = acceptance_lines(summary, sink.extra.get("planning_timing"), embedding_dim)
    intervals = seed_interval_lines(doc["runs"])
    parts += [*checks, "", *intervals]
    for method, d in first.items():
        parts += ["", cm.markdown_matrix(d["dyn_mse"], names, f"{method}: dynamics nMSE R[i][j]"), ""]
        if np.isfinite(np.asarray(d["plan_success"], dtype=float)).any():
            parts += [cm.markdown_matrix(d["plan_success"], names, f"{method}: planner success"), ""]
    atomic_write_text(run_dir / "continual.md", "\n".join(parts) + "\n")
    if first:
        cm.plot_heatmaps({m: d["dyn_mse"] for m, d in first.items()}, names, run_dir / "heatmap_dyn_mse.png",
                         "one-step nMSE after task i (rows) on task j (cols)", higher_is_better=False)
        plan = {m: d["plan_success"] for m, d in first.items()
                if np.isfinite(np.asarray(d["plan_success"], dtype=float)).any()}
        if plan:
            cm.plot_heatmaps(plan, names, run_dir / "heatmap_plan_success.png", "planner success", True)
        curves = {m: cm.ContinualCurve(d["curve_mse"]["iterations"], d["curve_mse"]["values"],
                                       d["curve_mse"]["task_ends"]) for m, d in first.items()}
        cm.plot_curves(curves, names, run_dir / "curves_dyn_mse.png", "one-step nMSE", log_y=True)
    headline = [m for m in ("avg_acc", "forgetting", "bwt", "min_acc", "wc_acc", "dyn_mse_avg",
                            "plan_success_old") if any(m in v for v in summary.values())]
    return "\n".join([cm.markdown_summary(summary, headline), "", *checks, "", *intervals])


REFERENCES = ("multitask", "multitask_noid", "single")  # keep every task's data or a model per task: not continual
REGULARIZERS = ("ewc", "si", "l2")
INTERVAL_METRICS = ("avg_acc", "forgetting", "plan_success_old")


def seed_interval_lines(runs: list[dict[str, Any]]) -> list[str]:
    """Mean over seeds with its 95% t interval per strategy, and the acceptance comparisons as paired
    differences over seeds (same seed = same data): what a reader needs to judge a 0.02 margin."""
    values: dict[str, dict[str, dict[int, float]]] = {}
    for r in runs:
        for m in INTERVAL_METRICS:
            if r.get(m) is not None:
                values.setdefault(r["method"], {}).setdefault(m, {})[r["seed"]] = float(r[m])
    n = max((len(v.get("avg_acc", {})) for v in values.values()), default=0)
    if n < 2:
        return []
    metrics = [m for m in INTERVAL_METRICS if any(m in v for v in values.values())]

    def cell(per_seed: dict[int, float] | None) -> str:
        if not per_seed:
            return "—"
        iv = seed_interval(np.array(list(per_seed.values())))
        return f"{iv.mean:.3f} [{iv.low:.3f}, {iv.high:.3f}]"

    out = ["## Over seeds", "", f"Mean with its 95% t interval over {n} seeds.", "",
           markdown_table(["strategy", *metrics], ([k, *(cell(v.get(m)) for m in metrics)] for k, v in values.items())),
           ""]
    acc = {k: v["avg_acc"] for k, v in values.items() if "avg_acc" in v}
    best = compared(mean={k: float(np.mean(list(v.values()))) for k, v in acc.items()})
    pairs = []
    if "multitask" in acc:
        pairs += [("multitask", best["continual"])] if "continual" in best else []
        pairs += [("multitask", "single")] if "single" in acc else []
    if "coreset" in acc and "regularizer" in best:
        pairs.append(("coreset", best["regularizer"]))
    for a, b in pairs:
        seeds = sorted(set(acc[a]) & set(acc[b]))
        iv = seed_interval(np.array([acc[a][s] - acc[b][s] for s in seeds]))
        out.append(f"- avg_acc {a} - {b}, paired over {len(seeds)} seeds: "
                   f"{iv.mean:+.3f} [{iv.low:+.3f}, {iv.high:+.3f}]")
    return out


def compared(mean: dict[str, float]) -> dict[str, str]:
    """Whom the acceptance compares with, by mean avg_acc: `continual`, the best continual strategy (the
    references left out), and `regularizer`, the best of ewc/si/l2; each only when one ran."""
    pools = {"continual": [k for k in mean if k not in REFERENCES],
             "regularizer": [k for k in REGULARIZERS if k in mean]}
    return {role: max(names, key=mean.get) for role, names in pools.items() if names}


def acceptance_lines(summary: dict[str, dict[str, float]], timing: dict[str, float] | None,
                     embedding_dim: int | None = None) -> list[str]:
    """The issue's acceptance ratios, computed from the summary (means over seeds)."""
    out = ["## Acceptance checks", ""]
    h, f, mt, cs = (summary.get(k, {}) for k in ("hypercrl", "finetune", "multitask", "coreset"))

    def line(text: str, ok: bool | None) -> None:
        out.append(f"- {text}: {'PASS' if ok else 'FAIL' if ok is not None else 'n/a'}")

    if h.get("dyn_forgetting") is not None and f.get("dyn_forgetting"):
        r = h["dyn_forgetting"] / f["dyn_forgetting"]
        line(f"hypercrl forgetting / finetune forgetting = {r:.3f} (<= 0.2)", r <= 0.2)
    if h.get("dyn_mse_avg") is not None and mt.get("dyn_mse_avg"):
        r = h["dyn_mse_avg"] / mt["dyn_mse_avg"]
        line(f"hypercrl avg nMSE / multitask avg nMSE = {r:.3f} (<= 1.1)", r <= 1.1)
    if h.get("avg_acc") is not None and mt.get("avg_acc"):
        r = h["avg_acc"] / mt["avg_acc"]
        line(f"hypercrl avg_acc / multitask avg_acc = {r:.3f} (>= 0.9)", r >= 0.9)
    if h.get("plan_success_old") is not None and cs.get("plan_success_old") is not None:
        d = 100 * (h["plan_success_old"] - cs["plan_success_old"])
        line(f"planner success on earlier tasks, hypercrl - coreset = {d:+.1f} points (>= -5)", d >= -5)
    acc = {k: v["avg_acc"] for k, v in summary.items() if v.get("avg_acc") is not None}
    best = compared(acc)
    if "multitask" in acc and "continual" in best:
        d = acc["multitask"] - acc[best["continual"]]
        line(f"multitask avg_acc - best continual strategy's ({best['continual']}) = {d:+.3f} (>= -0.02)", d >= -0.02)
    if "multitask" in acc and "single" in acc:
        d = acc["multitask"] - acc["single"]
        line(f"multitask avg_acc - single's (a reference: one model per task) = {d:+.3f} (reported)", None)
    if "coreset" in acc and "regularizer" in best:
        b = best["regularizer"]
        line(f"coreset avg_acc {acc['coreset']:.3f} vs best of ewc/si/l2 ({b}) {acc[b]:.3f} (>=)",
             acc["coreset"] >= acc[b])
    if cs.get("forgetting") is not None and f.get("forgetting"):
        r = cs["forgetting"] / f["forgetting"]
        line(f"coreset forgetting / finetune forgetting = {r:.3f} (<= 0.2)", r <= 0.2)
    if h.get("memory_growth_per_task") is not None:
        g = h["memory_growth_per_task"]
        line(f"hypercrl memory growth per task = {g:.0f} floats (one embedding = {embedding_dim})",
             None if embedding_dim is None else g == embedding_dim)
    if timing:
        line(f"plan time hypernet/MLP median {timing['ratio_median']:.3f}, p95 {timing['ratio_p95']:.3f} (<= 1.1)",
             timing["ratio_median"] <= 1.1 and timing["ratio_p95"] <= 1.1)
    return out
