"""units.json: every finished unit of a run, on disk as soon as it finishes.

Results are rebuilt from it in the units' canonical order, so a run gives the same results.json
whichever order its workers finish in; `resume=true` keeps the finished units and runs the rest
(failed units are run again). The ledger stores the run's config without the keys that may change
between a run and its resumption (`runtime.*`, `resume`), and refuses to resume another config.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from robocl.errors import UsageError
from robocl.parallel.schedule import projection
from robocl.parallel.units import Unit, UnitResult
from robocl.utils.io import atomic_write_json, atomic_write_text, json_safe

LEDGER = "units.json"
VOLATILE_KEYS = ("runtime", "resume")


def comparable_config(config: dict[str, Any]) -> dict[str, Any]:
    """The part of a run's config that must match for its finished units to be reused."""
    return json_safe({k: v for k, v in config.items() if k not in VOLATILE_KEYS})


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: node}


def config_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    fa, fb = _flat(a), _flat(b)
    return sorted(k for k in set(fa) | set(fb) if fa.get(k, "<unset>") != fb.get(k, "<unset>"))


def refuse_other_config(stored: dict[str, Any], config: dict[str, Any]) -> None:
    """One line naming the first keys where a run's stored config and this one differ (resume refuses)."""
    differ = config_differences(stored, config)
    if differ:
        shown = ", ".join(differ[:5]) + (f" (+{len(differ) - 5} more)" if len(differ) > 5 else "")
        raise UsageError(f"resume=true: the config differs from the run's in {shown}; only runtime.* may "
                         "change when resuming")


def log_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("_") + ".log"


class UnitLedger:
    """Finished and failed units of one run directory (units.json and units/<key>.log)."""

    def __init__(self, run_dir: Path, config: dict[str, Any], resume: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LEDGER
        self.config = comparable_config(config)
        self.units: dict[str, dict[str, Any]] = {}
        if resume:
            self._load()

    def _load(self) -> None:
        if not self.path.is_file():
            raise UsageError(f"resume=true: {self.run_dir} holds no {LEDGER}; pass hydra.run.dir=<the run "
                             "directory to resume> (or resume=<that directory>)")
        try:
            doc = json.loads(self.path.read_text())
            stored, units = doc["config"], doc["units"]
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"resume=true: {self.path} is damaged ({exc}); start a new run directory") from None
        refuse_other_config(stored, self.config)
        self.units = {k: v for k, v in units.items() if v.get("status") == "done"}

    def pending(self, units: list[Unit]) -> list[Unit]:
        return [u for u in units if u.key not in self.units]

    def record(self, result: UnitResult) -> None:
        """Store one unit's outcome (atomically) and its log under units/."""
        self.units[result.key] = {
            "status": "failed" if result.error else "done",
            "seconds": round(result.seconds, 3),
            "worker": result.worker,
            "error": result.error,
            "rows": result.rows,
        }
        if result.detail is not None:
            self.units[result.key]["detail"] = json_safe(result.detail)
        if result.log:
            atomic_write_text(self.run_dir / "units" / log_name(result.key), result.log + "\n")
        self.save()

    def save(self) -> None:
        atomic_write_json(self.path, {"config": self.config, "units": self.units})

    def rows(self, units: list[Unit]) -> list[dict[str, Any]]:
        """Rows of the finished units, in the units' canonical order."""
        return [row for u in units if self.units.get(u.key, {}).get("status") == "done"
                for row in self.units[u.key]["rows"]]

    def details(self, units: list[Unit]) -> dict[str, Any]:
        """The finished units' details (what a runner's reports need besides the rows), canonical order."""
        return {u.key: self.units[u.key]["detail"] for u in units
                if self.units.get(u.key, {}).get("status") == "done" and "detail" in self.units[u.key]}

    def failures(self) -> list[dict[str, str]]:
        return [{"unit": k, "error": v["error"], "log": str(Path("units") / log_name(k))}
                for k, v in self.units.items() if v["status"] == "failed"]

    def timing(self, units: list[Unit]) -> dict[str, Any]:
        """Per-unit wall time of the finished `units`, and the wall time they would take on 1, 2, 16 and 64
        workers (`projected_wall_s`: the executor's schedule replayed on these times, in canonical order)."""
        seconds = np.array([self.units[u.key]["seconds"] for u in units
                            if self.units.get(u.key, {}).get("status") == "done"])
        if not len(seconds):
            return {"units": 0}
        median, p95 = np.percentile(seconds, [50, 95])
        return {"units": len(seconds), "total_s": round(float(seconds.sum()), 1), "median_s": round(float(median), 2),
                "p95_s": round(float(p95), 2), "max_s": float(seconds.max()),
                "projected_wall_s": projection(seconds.tolist()),
                "workers": sorted({v["worker"] for v in self.units.values()})}


def check_rerun(run_dir: Path, config: dict[str, Any], experiment: str) -> None:
    """resume=true for an experiment that resumes from its training checkpoints (no units.json): the run
    directory must hold this config's results.json (one line otherwise)."""
    path = Path(run_dir) / "results.json"
    try:
        stored = json.loads(path.read_text())["config"]
    except OSError:
        raise UsageError(f"resume=true: {run_dir} holds no results.json of a {experiment} run; pass "
                         "hydra.run.dir=<the run directory to resume> (or resume=<that directory>)") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"resume=true: {path} is damaged ({exc}); start a new run directory") from None
    refuse_other_config(comparable_config(stored), comparable_config(config))
