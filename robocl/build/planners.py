"""Config -> planner: MPPI or CEM with `planner=`'s settings and the robot's action box (named by
configs/planner/*.yaml; the class is the method's, see `robocl.build.methods`)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

import torch
from omegaconf import DictConfig, OmegaConf

from robocl.errors import UsageError
from robocl.planning.base import CostFn, DynamicsFn
from robocl.planning.batched import BatchedMPPI
from robocl.planning.cem import CEM
from robocl.planning.mppi import MPPI

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}


def plan_dtype(precision: str) -> torch.dtype | None:
    """The matmul dtype of a `planner.precision` value (None: fp32, the model's own); another value is one
    UsageError line."""
    if precision not in PRECISIONS:
        raise UsageError(f"planner.precision={precision}: accepted {', '.join(PRECISIONS)}")
    return PRECISIONS[precision]


def planning_dynamics(node: DictConfig, dynamics: DynamicsFn) -> DynamicsFn:
    """The model step the planner rolls out, in `planner.precision` (fp32, or bf16 matmuls for a model
    whose step takes a `dtype`: the ensemble). A bad value is one UsageError line."""
    precision = str(OmegaConf.select(node, "precision", default="fp32"))
    dtype = plan_dtype(precision)
    if dtype is None:
        return dynamics
    if "dtype" not in inspect.signature(dynamics).parameters:
        raise UsageError(f"planner.precision={precision}: this dynamics model plans in fp32 only "
                         "(bf16 planning needs dynamics=ensemble)")
    return functools.partial(dynamics, dtype=dtype)


def _common(node: DictConfig, robot: DictConfig, seed: int) -> dict:
    return dict(
        action_low=list(robot.action_low),
        action_high=list(robot.action_high),
        horizon=int(node.horizon),
        population=int(node.population),
        iterations=int(node.iterations),
        noise_sigma=list(node.noise_sigma),
        seed=seed,
    )


def mppi(node: DictConfig, dynamics: DynamicsFn, cost: CostFn, robot: DictConfig, seed: int = 0,
         reset_particles: Callable[[], None] | None = None) -> MPPI:
    return MPPI(planning_dynamics(node, dynamics), cost, temperature=float(node.temperature),
                reset_particles=reset_particles, **_common(node, robot, seed))


def fleet_mppi(node: DictConfig, dynamics: DynamicsFn, cost: Callable, robot: DictConfig, robots: int,
               seed: int = 0) -> BatchedMPPI:
    """MPPI for `robots` robots in one call (robocl.planning.batched), with the `planner=mppi` settings."""
    common = _common(node, robot, seed)
    return BatchedMPPI(planning_dynamics(node, dynamics), cost, robots=robots, temperature=float(node.temperature),
                       **common)


def cem(node: DictConfig, dynamics: DynamicsFn, cost: CostFn, robot: DictConfig, seed: int = 0,
        reset_particles: Callable[[], None] | None = None) -> CEM:
    return CEM(planning_dynamics(node, dynamics), cost, elite_fraction=float(node.elite_fraction),
               reset_particles=reset_particles, **_common(node, robot, seed))
