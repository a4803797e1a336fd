"""Pieces the simulation experiment runners share: the nominal models built once before fan-out, and
the metrics a run reports about its controller. (Models and controllers are built by `robocl.build`.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from robocl.build.methods import MethodSpec
from robocl.build.pretrained import pretrained_model
from robocl.build.refiners import ensure_refiner
from robocl.control import Controller
from robocl.dynamics.base import DynamicsModel
from robocl.eval.loggers import NoLogger, make_logger
from robocl.refiners.base import Refiner


def nominal_models(cfg: DictConfig, methods: list[MethodSpec], sink: Any, progress: Any
                   ) -> tuple[DynamicsModel, Any]:
    """The pretrained nominal model, and the AFM refiner network trained against it when a method
    refines (None otherwise): the runner's cache-filling step, once here, with progress, before any unit
    starts; every unit's controller gets them (nothing is trained per worker, and building a controller
    never trains); their training info goes into results.json."""
    base_model, pre_info = pretrained_model(cfg, log=progress.log)
    sink.extra["pretrain"] = pre_info
    refiner = None
    if any(m.refine for m in methods):
        refiner = ensure_refiner(cfg.refiner, cfg.robot, base_model, log=progress.log, progress=progress)
    if refiner is not None:
        sink.extra["afm_train"] = refiner.record()
    return base_model, None if refiner is None else refiner.net


def run_logger(cfg: DictConfig, run_dir: Path) -> NoLogger:
    """The run's logger (`logger=`: none, csv or wandb), given its settings and the config as plain data."""
    node = OmegaConf.select(cfg, "logger")
    settings = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else {}
    return make_logger(settings, run_dir, name=str(cfg.get("experiment_name", "robocl")),
                       config=OmegaConf.to_container(cfg, resolve=True),
                       append=bool(OmegaConf.select(cfg, "resume", default=False)))


def refiner_stats(refiner: Refiner) -> dict[str, Any]:
    """Regime switches the AFM refiner detected (and raw actions it executed after them)."""
    if getattr(refiner, "name", "") != "afm":
        return {}
    return {"afm_switches": refiner.switches, "afm_raw_after_switch": refiner.raw_after_switch}


def percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def controller_metrics(controller: Controller) -> dict[str, Any]:
    s = controller.stats
    compute = [p + r + lrn for p, r, lrn in zip(s.plan_ms, s.refine_ms, s.learn_ms or [0.0] * len(s.plan_ms))]
    median_compute = percentile(compute, 50)
    return {
        "plan_ms_median": percentile(s.plan_ms, 50),
        "plan_ms_p95": percentile(s.plan_ms, 95),
        "refine_ms_median": percentile(s.refine_ms, 50),
        "learn_ms_median": percentile(s.learn_ms, 50),
        "control_hz": 1000.0 / median_compute if median_compute else None,
        "dyn_mse": s.pred_sq_err.mean_all(),  # over every step, also past the kept window
        "safety_events": s.safety_events.count,
        **(controller.selector.record() if controller.selector is not None else {}),
    }
