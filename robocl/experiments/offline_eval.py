"""robocl-eval's driver: one unit per (episode, method), fanned out by `runtime.executor`, resumable.

Every method replays an episode on its own (its own model copy, strategy and random stream), so a
unit is one method on one episode and the rows do not depend on which units run beside it, where,
or in which order. Without regime labels the changes are detected on the reference method's error
(the first non-learning model listed), which a unit of another method therefore replays beside it.
The error curves for errors.png travel in each unit's `detail` (downsampled), so a resumed run
still plots every finished unit.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from robocl.build.factory import build
from robocl.build.pretrained import pretrained_model, simulator_pretrained_model
from robocl.build.refiners import ensure_refiner
from robocl.errors import UsageError
from robocl.experiments.fanout import fan_out, open_ledger
from robocl.offline.evaluate import (
    EvalSettings,
    RefinerTrack,
    Track,
    evaluate_episode,
    learning_block,
    make_bias_track,
    make_dynamics_track,
)
from robocl.offline.plots import error_curves, plot_errors
from robocl.parallel.units import Unit, UnitContext

Method = tuple[str, str, Any]  # (name, kind, config node as plain data); kinds in robocl/cli/eval.parse_methods
LEARNING_KINDS = ("continual", "refiner")


def reference_method(methods: list[Method]) -> int:
    """The method whose error the change detector reads without labels: a frozen model if one is listed
    (`frozen`, `sim`), else the first dynamics method, else the first."""
    for kinds in (("frozen", "sim"), ("bias", "continual")):
        for i, (_, kind, _) in enumerate(methods):
            if kind in kinds:
                return i
    return 0


def units(episodes: list, methods: list[Method], expected: list[int]) -> list[Unit]:
    """Episodes outer, methods inner: the order results.json lists them in."""
    return [Unit(f"{ep.name}|{name}", {"episode": e, "method": m, "expected": expected[e]}, f"{name} {ep.name}")
            for e, ep in enumerate(episodes) for m, (name, _, _) in enumerate(methods)]


def make_track(shared: dict[str, Any], method: Method) -> Track:
    """A fresh track for one method (global torch seed reset first: a strategy's construction may draw)."""
    cfg, base, seed = shared["cfg"], shared["model"], shared["seed"]
    name, kind, node = method
    node = None if node is None else OmegaConf.create(node)
    torch.manual_seed(seed)
    if kind == "refiner":
        refiner = build(node, "refiner", robot=cfg.robot, model=base, seed=seed, net=shared["refiner_nets"].get(name))
        return RefinerTrack(name, refiner, base, shared["scale"], shared["low"], shared["high"])
    if kind == "sim":
        return make_dynamics_track(name, shared["sim_model"], None, shared["settings"].kstep, seed,
                                   shared["settings"].kstep_stride, scale=shared["scale"])
    if kind == "bias":
        return make_bias_track(name, base, shared["settings"].kstep, int(node.window), shared["settings"].kstep_stride)
    factory = None if kind == "frozen" else (lambda model, s: build(node, "continual", model=model, seed=s))
    return make_dynamics_track(name, base, factory, shared["settings"].kstep, seed, shared["settings"].kstep_stride,
                               shared["labels"])


def run_unit(shared: dict[str, Any], params: dict[str, Any], ctx: UnitContext) -> dict[str, Any]:
    """One method replayed over one episode (beside the reference method when it is another one)."""
    from robocl.offline.readers import open_source

    ep, m = shared["episodes"][params["episode"]], params["method"]
    ref = shared["reference"]
    tracks = [make_track(shared, shared["methods"][i]) for i in sorted({m, ref})]
    mine = next(t for t in tracks if t.name == shared["methods"][m][0])
    expected = params["expected"]

    def on_block(done: int, rates: dict[str, float]) -> None:
        ctx.report(done, expected, f"{mine.name} {rates.get(mine.name, 0):,.0f}/s")

    res = evaluate_episode(open_source(ep, shared["mapping"]).events(), shared["mapping"], tracks, shared["settings"],
                           ep.name, shared["seed"], on_block)
    row = next(r for r in res.rows if r["method"] == mine.name)
    ctx.log(f"{mine.name} {ep.name}: {res.stats['transitions']} transitions, "
            f"{row.get('transitions_per_s') or 0:,.0f}/s")
    notes = [n for n in res.notes if not n.startswith(tuple(t.name + " " for t in tracks if t is not mine))]
    return {"rows": [row], "detail": {
        "stats": res.stats, "notes": notes, "curves": error_curves(res.times, res.series, mine.name),
        "changes": [{"index": c.index, "t_s": float(res.times[c.index]), "before": c.before, "after": c.after}
                    for c in res.changes]}}


def episode_record(ep, info, details: list[dict[str, Any]], seconds: list[float]) -> dict[str, Any]:
    """results.json `episodes[]`: the source, its alignment counts and the changes (from any unit: all agree)."""
    stats = dict(details[0]["stats"])
    reads = [d["stats"]["read_transitions_per_s"] for d in details]
    stats.update(read_transitions_per_s=max(reads), read_align_s=min(d["stats"]["read_align_s"] for d in details),
                 episode_s=float(sum(seconds)))
    return {"name": ep.name, "path": str(ep.path), "format": ep.kind, "meta": info.meta,
            "regime_labels": info.has_regimes, **stats, "changes": details[0]["changes"]}


def shared_artifacts(cfg: DictConfig, mapping, methods: list[Method], settings: EvalSettings, sink, progress,
                     episodes: list, labels: bool) -> dict[str, Any]:
    """The nominal model (and `sim`'s, and trained refiners) built once, before fan-out."""
    other_period = abs(mapping.period - float(cfg.robot.dt)) > 1e-12
    # the model robocl-run plans with (same cache key), unless the data has another period
    overrides = {"dt": mapping.period} if other_period else None
    base, pre_info = pretrained_model(cfg, log=progress.log, env_overrides=overrides)
    sink.extra["pretrain"] = pre_info
    if other_period:
        sink.note(f"data.period={mapping.period} differs from robot.dt={cfg.robot.dt}: the nominal model "
                  f"is pretrained at dt={mapping.period}")
    sim_model = None
    if any(kind == "sim" for _, kind, _ in methods):  # the same dynamics settings as the model=PATH one
        sim_model = simulator_pretrained_model(cfg, mapping.period, log=progress.log)
    refiner_nets = {}
    for name, kind, node in methods:
        if kind == "refiner":  # an offline-trained refiner (afm) is trained here once if not cached
            trained = ensure_refiner(OmegaConf.create(node), cfg.robot, base, log=progress.log, progress=progress)
            if trained is not None:
                refiner_nets[name] = trained.net
                sink.extra["afm_train"] = trained.record()  # as robocl-run and robocl-train record it
    # blocks of the size the whole method list would use, so a unit's numbers do not depend on its neighbours
    learning = any(kind in LEARNING_KINDS for _, kind, _ in methods)
    return {"cfg": cfg, "model": base, "sim_model": sim_model, "refiner_nets": refiner_nets, "mapping": mapping,
            "settings": dataclasses.replace(settings, chunk=learning_block(settings.chunk, learning)),
            "methods": methods, "reference": reference_method(methods), "episodes": episodes, "labels": labels,
            "seed": int(cfg.seed), "scale": base.target_norm.std.detach().clone(),
            "low": torch.as_tensor(list(cfg.robot.action_low), dtype=torch.float32),
            "high": torch.as_tensor(list(cfg.robot.action_high), dtype=torch.float32)}


def run(cfg: DictConfig, run_dir: Path, progress, sink, mapping, episodes: list, infos: list,
        methods: list[Method], settings: EvalSettings, labels: bool) -> list[dict[str, Any]]:
    """Fan the (episode, method) units out; results.json, errors.png after each. Returns the episodes'
    records (what summary.md needs besides the rows)."""
    expected = [info.expected_ticks(mapping.period_ns) for info in infos]
    if settings.max_transitions:
        expected = [min(n, settings.max_transitions) for n in expected]
    plan = units(episodes, methods, expected)
    method_of = {u.key: methods[u.params["method"]][0] for u in plan}
    by_episode: dict[int, list[Unit]] = {}
    for u in plan:
        by_episode.setdefault(u.params["episode"], []).append(u)
    ledger = open_ledger(cfg, run_dir)

    def refresh(_result=None) -> None:
        records, curves = [], []
        for e, group in by_episode.items():
            details = ledger.details(group)
            if not details:
                continue
            seconds = [ledger.units[k]["seconds"] for k in details]
            record = episode_record(episodes[e], infos[e], list(details.values()), seconds)
            records.append(record)
            curves.append({"name": record["name"], "changes": record["changes"],
                           "curves": {method_of[k]: d["curves"] for k, d in details.items()}})
            for d in details.values():
                for note in d["notes"]:
                    if note not in sink.notes:
                        sink.note(note)
        sink.extra["episodes"] = records
        sink.flush()
        plot_errors(curves, run_dir / "errors.png")

    def build_shared(todo: list[Unit]) -> dict[str, Any]:
        return shared_artifacts(cfg, mapping, methods, settings, sink, progress, episodes, labels)

    fan_out(cfg, run_dir, progress, sink, plan, run_unit, None, on_result=refresh, build_shared=build_shared,
            ledger=ledger)
    refresh()
    for failure in ledger.failures():  # a recording found unusable mid-stream is bad input: one line, exit 2
        if failure["error"].startswith("DataError: "):
            raise UsageError(failure["error"][len("DataError: "):])
    return sink.extra["episodes"]
