"""Config -> planner: MPPI or CEM with `planner=`'s settings and the robot's action box (named by
configs/planner/*.yaml; the class is the method's, see `robocl.build.methods`)."""

from __future__ import annotations

from collections.abc import Callable

from omegaconf import DictConfig

from robocl.planning.base import CostFn, DynamicsFn
from robocl.planning.batched import BatchedMPPI
from robocl.planning.cem import CEM
from robocl.planning.mppi import MPPI


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
    return MPPI(dynamics, cost, temperature=float(node.temperature), reset_particles=reset_particles,
                **_common(node, robot, seed))


def fleet_mppi(node: DictConfig, dynamics: DynamicsFn, cost: Callable, robot: DictConfig, robots: int,
               seed: int = 0) -> BatchedMPPI:
    """MPPI for `robots` robots in one call (robocl.planning.batched), with the `planner=mppi` settings."""
    common = _common(node, robot, seed)
    return BatchedMPPI(dynamics, cost, robots=robots, temperature=float(node.temperature), **common)


def cem(node: DictConfig, dynamics: DynamicsFn, cost: CostFn, robot: DictConfig, seed: int = 0,
        reset_particles: Callable[[], None] | None = None) -> CEM:
    return CEM(dynamics, cost, elite_fraction=float(node.elite_fraction), reset_particles=reset_particles,
               **_common(node, robot, seed))
