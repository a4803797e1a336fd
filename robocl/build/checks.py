"""Config validation: every bad value becomes one line naming the key and what is accepted."""

from __future__ import annotations

import math
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from robocl.build.planners import plan_dtype
from robocl.errors import UsageError

_MISSING = object()


def get(cfg: DictConfig, key: str) -> Any:
    value = OmegaConf.select(cfg, key, default=_MISSING)
    if value is _MISSING:
        raise UsageError(f"{key}: missing from the config")
    return value


def number(cfg: DictConfig, key: str, lo: float | None = None, hi: float | None = None,
           integer: bool = False, lo_open: bool = False, hi_open: bool = False) -> float:
    value = get(cfg, key)
    kind = "an integer" if integer else "a number"
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and integer and not float(value).is_integer():
        ok = False
    if ok and not math.isfinite(float(value)):
        ok = False
    if ok and lo is not None and (value < lo or (lo_open and value == lo)):
        ok = False
    if ok and hi is not None and (value > hi or (hi_open and value == hi)):
        ok = False
    if not ok:
        bounds = []
        if lo is not None:
            bounds.append(f"{'>' if lo_open else '>='} {lo:g}")
        if hi is not None:
            bounds.append(f"{'<' if hi_open else '<='} {hi:g}")
        raise UsageError(f"{key}={value!r}: must be {kind}{' ' + ' and '.join(bounds) if bounds else ''}")
    return int(value) if integer else float(value)


def flag(cfg: DictConfig, key: str) -> bool:
    value = get(cfg, key)
    if not isinstance(value, bool):
        raise UsageError(f"{key}={value!r}: must be true or false")
    return value


def number_list(cfg: DictConfig, key: str, length: int | None = None, min_items: int = 1) -> list[float]:
    value = get(cfg, key)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and length in (None, 1):
        value = [value]
    if not isinstance(value, (list, ListConfig)) or len(value) < min_items or (
        length is not None and len(value) != length
    ) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        shape = f"{length} numbers" if length else f"a list of at least {min_items} numbers"
        raise UsageError(f"{key}={_show(value)}: must be {shape}, e.g. [{', '.join(['1.0'] * (length or 1))}]")
    return [float(v) for v in value]


def pair_list(cfg: DictConfig, key: str, dim: int) -> list[list[float]]:
    value = get(cfg, key)
    example = "[[" + ",".join(["1.0"] * dim) + "]]"
    if not isinstance(value, (list, ListConfig)) or not value:
        raise UsageError(f"{key}={_show(value)}: must be a non-empty list of {dim}-number lists, e.g. {example}")
    out = []
    for item in value:
        if not isinstance(item, (list, ListConfig)) or len(item) != dim or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in item
        ):
            raise UsageError(f"{key}: item {_show(item)} must be {dim} numbers, e.g. {example}")
        out.append([float(v) for v in item])
    return out


def string_list(cfg: DictConfig, key: str) -> list[str]:
    value = get(cfg, key)
    if isinstance(value, str):
        return [value]
    if not isinstance(value, (list, ListConfig)) or not value or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{key}={_show(value)}: must be a name or a non-empty list of names")
    return list(value)


def int_list(cfg: DictConfig, key: str) -> list[int]:
    value = get(cfg, key)
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if not isinstance(value, (list, ListConfig)) or not value or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise UsageError(f"{key}={_show(value)}: must be an integer or a non-empty list of integers, e.g. [0,1,2]")
    return list(value)


def check_common(cfg: DictConfig) -> None:
    """Keys every planning experiment relies on (DESIGN.md, 'Config keys')."""
    number(cfg, "planner.horizon", lo=1, integer=True)
    number(cfg, "planner.population", lo=2, integer=True)
    number(cfg, "planner.iterations", lo=1, integer=True)
    number(cfg, "planner.temperature", lo=0, lo_open=True)
    number(cfg, "planner.elite_fraction", lo=0, hi=1, lo_open=True)
    precision = str(OmegaConf.select(cfg, "planner.precision", default="fp32"))
    if plan_dtype(precision) is not None and OmegaConf.select(cfg, "dynamics.kind") != "ensemble":
        raise UsageError(f"planner.precision={precision}: needs dynamics=ensemble (dynamics="
                         f"{OmegaConf.select(cfg, 'dynamics.kind')} plans in fp32 only)")
    action_dim = len(get(cfg, "robot.action_low"))
    number_list(cfg, "planner.noise_sigma", length=action_dim)
    if OmegaConf.select(cfg, "dynamics.ensemble_size") is not None:
        number(cfg, "dynamics.ensemble_size", lo=1, integer=True)
    number(cfg, "budget.max_steps", lo=1, integer=True)
    int_list(cfg, "seeds")
    window = number_list(cfg, "task.intervention", length=2)
    if not 0.0 <= window[0] <= window[1] <= 1.0:
        raise UsageError(f"task.intervention={window}: must be [start, end] with 0 <= start <= end <= 1")
    number(cfg, "runtime.threads", lo=0, integer=True)
    afm_with_learner(cfg)
    continual = OmegaConf.select(cfg, "continual.kind")
    dynamics = OmegaConf.select(cfg, "dynamics.kind")
    if continual == "hypercrl" and dynamics != "hypernet":
        raise UsageError(f"continual=hypercrl needs dynamics=hypernet (got dynamics={dynamics}); "
                         "use dynamics=hypernet or another continual strategy")


AFM_WITH_LEARNER = ("stacked", "residual", "gated")


def afm_with_learner(cfg: DictConfig) -> str:
    """How an `_afm_online` method couples refiner and learner (`refiner.with_learner`): `stacked`, the refiner
    against a frozen copy of the nominal model and the learner learning the refined robot; `residual`, the
    refiner against the learner's current model and the learner learning the robot itself; `gated`, stacked,
    with the planner on the learner only while it predicts the refined robot better than the nominal model."""
    value = OmegaConf.select(cfg, "refiner.with_learner", default="gated")
    if value not in AFM_WITH_LEARNER:
        raise UsageError(f"refiner.with_learner={_show(value)}: accepted {', '.join(AFM_WITH_LEARNER)}")
    return str(value)


def _show(value: Any) -> str:
    if isinstance(value, (DictConfig, ListConfig)):
        return str(OmegaConf.to_container(value))
    return repr(value) if isinstance(value, str) else str(value)
