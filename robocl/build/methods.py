"""Method names used in `methods=[...]`: a planner plus optional modifiers.

Grammar: PLANNER[_afm][_online], e.g. `mppi`, `cem`, `mppi_online`, `mppi_afm`, `mppi_afm_online`.
- `_online`: the model keeps learning through the strategy chosen by `continual=` (default online).
- `_afm`: actions pass through the refiner chosen by `refiner=` (the AFM refiner) instead of identity.
"""

from __future__ import annotations

from dataclasses import dataclass

from robocl.build import checks as check
from robocl.errors import UsageError

PLANNERS = ("mppi", "cem")
MODIFIERS = ("afm", "online")


@dataclass(frozen=True)
class MethodSpec:
    name: str
    planner: str
    online: bool
    refine: bool


def parse_method(name: str) -> MethodSpec:
    parts = str(name).split("_")
    planner, mods = parts[0], parts[1:]
    if planner not in PLANNERS or any(m not in MODIFIERS for m in mods) or len(set(mods)) != len(mods):
        raise UsageError(
            f"methods: {name!r} is not a method; accepted: PLANNER[_afm][_online] with PLANNER in "
            f"{', '.join(PLANNERS)} (e.g. mppi, mppi_online, mppi_afm, mppi_afm_online)"
        )
    return MethodSpec(str(name), planner, "online" in mods, "afm" in mods)


def parse_methods(cfg) -> list[MethodSpec]:
    """`methods=[...]` of a config, checked: `_afm` methods need the AFM refiner selected."""
    methods = [parse_method(m) for m in check.string_list(cfg, "methods")]
    check_refiner(cfg, methods)
    check_planner(cfg, methods)
    return methods


def check_refiner(cfg, methods: list[MethodSpec], key: str = "methods") -> None:
    """`_afm` methods refine with `refiner=`, which must be the AFM refiner (else they would run unrefined)."""
    kind = cfg.refiner.get("kind") if cfg.get("refiner") is not None else None
    if any(m.refine for m in methods) and str(kind) != "afm":
        raise UsageError(f"{key} with _afm need refiner=afm (got refiner={kind})")


def check_planner(cfg, methods: list[MethodSpec], key: str = "methods") -> None:
    """The planner class comes from the method's name and its settings from `planner=`: they must agree,
    or planner=cem methods=[mppi] would run MPPI with CEM's settings (`key`: where the methods were named)."""
    kind = cfg.planner.get("kind") if cfg.get("planner") is not None else None
    other = next((m for m in methods if kind is not None and m.planner != str(kind)), None)
    if other is not None:
        raise UsageError(f"{key}: {other.name} plans with {other.planner}, but planner={kind} configures {kind}; "
                         f"use planner={other.planner}, or {key} named {kind}[_afm][_online]")
