"""Config -> Controller: a fresh controller (its own model copy, strategy, planner, refiner) for one run."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from robocl.build import checks
from robocl.build.factory import build
from robocl.build.methods import MethodSpec
from robocl.continual.base import ContinualStrategy
from robocl.control import STATS_WINDOW, Controller
from robocl.dynamics.base import DynamicsModel
from robocl.dynamics.selector import RecentErrorSelector
from robocl.planning.base import CostFn
from robocl.refiners.base import Refiner
from robocl.sim.excitation import Excitation, ExcitedController
from robocl.utils.imports import load_callable


def make_controller(cfg: DictConfig, method: MethodSpec, base_model: DynamicsModel, cost: CostFn,
                    seed: int, refiner_net: Any = None) -> Controller:
    """A fresh controller for one run: its own copy of the model, strategy, planner and refiner
    (`refiner_net`: the AFM network from `robocl.build.refiners.ensure_refiner`, called before fan-out;
    without it the refiner's factory loads the cached one, or raises UsageError: building never trains).

    The global torch RNG is re-seeded too (bootstrap resampling in online learning draws from it),
    so a run's result does not depend on which runs came before it in the same process.

    Its stats keep the latest max(STATS_WINDOW, budget.max_steps) steps: an episode (never longer than
    budget.max_steps) reports percentiles over every one of its steps, and a controller that outlives one
    (the ROS node, robocl-run experiment=soak) keeps a bounded history.
    """
    torch.manual_seed(seed)
    model = copy.deepcopy(base_model).eval()
    strategy = (build(cfg.continual, "continual", model=model, seed=seed) if method.online
                else ContinualStrategy(model))
    # `stacked`: the refiner's regime context and switch test are against the nominal model it was trained
    # with, a frozen copy of it when a learner plans, and the learner learns the refined robot
    # (Controller.learn_planned); `gated`: the same, and the planner plans on the learner only while it
    # predicts better than that nominal copy; `residual`: the refiner is against the learner's current model,
    # which learns the robot itself, so the refiner corrects only what the learner has not learned yet
    coupling = checks.afm_with_learner(cfg) if method.online and method.refine else None
    stacked = coupling in ("stacked", "gated")
    nominal = copy.deepcopy(base_model).eval() if stacked else model
    selector = RecentErrorSelector(model, nominal) if coupling == "gated" else None
    plans_on = selector or model
    planner_factory = load_callable(f"robocl.build.planners:{method.planner}")
    planner = planner_factory(cfg.planner, dynamics=plans_on.step, cost=cost, robot=cfg.robot, seed=seed,
                              reset_particles=plans_on.reset_particles)
    refiner = (build(cfg.refiner, "refiner", robot=cfg.robot, model=nominal, seed=seed,
                     net=None if refiner_net is None else copy.deepcopy(refiner_net))
               if method.refine else Refiner())
    window = max(STATS_WINDOW, int(OmegaConf.select(cfg, "budget.max_steps", default=0) or 0))
    return Controller(model, planner, strategy, refiner, safe_action=np.asarray(cfg.robot.safe_action, float),
                      stats_window=window, learn_planned=stacked, selector=selector)


def excitation_spec(cfg: DictConfig) -> tuple[list[float], float] | None:
    """`excitation.std` / `.decay` checked: (std per command channel, decay), or None when off (std 0).
    A bad value is one UsageError line naming the key and what is accepted."""
    from robocl.errors import UsageError

    if OmegaConf.select(cfg, "excitation") is None:
        return None
    dim = len(checks.get(cfg, "robot.action_low"))
    raw = checks.get(cfg, "excitation.std")
    std = checks.number_list(cfg, "excitation.std", length=None if isinstance(raw, (int, float)) else dim)
    std = std * dim if len(std) == 1 else std
    if any(v < 0 for v in std):
        raise UsageError(f"excitation.std={raw}: must be >= 0 (a number, or one per command channel: {dim})")
    decay = checks.number(cfg, "excitation.decay", lo=0, hi=1, hi_open=True)
    return (std, decay) if any(std) else None


def excite(cfg: DictConfig, controller: Controller, spec: tuple[list[float], float] | None, seed: int):
    """The controller as the episode runner drives it: with `excitation` on, its commands carry the
    dither (seeded by the episode, so serial and Ray runs match); otherwise the controller itself."""
    if spec is None:
        return controller
    std, decay = spec
    return ExcitedController(controller, Excitation(np.asarray(std), decay, np.asarray(cfg.robot.action_low, float),
                                                    np.asarray(cfg.robot.action_high, float), seed=10_007 + seed))
