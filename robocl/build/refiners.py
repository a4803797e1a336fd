"""The trained refiner a `refiner=` config needs: a cache-filling step, not a factory.

`ensure_refiner` returns the AFM refiner's flow network trained against a nominal model: from the cache
(`runtime.cache_dir`), or simulated and trained now (with the caller's log and progress bar) and cached.
The commands and runners call it once, before they build a controller or fan units out, and hand the network
to the refiner's factory (`robocl.refiners.afm:from_config`, through `build.controller.make_controller`'s
`refiner_net` or `build.factory.build(..., net=...)`). The factory only loads: on a cache miss it is a usage
error, never a training job. Refiners that learn nothing offline (`refiner=identity`) need no network.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TrainedRefiner:
    net: Any  # robocl.refiners.afm.AFMNet
    path: Path
    info: dict[str, Any]

    def record(self) -> dict[str, Any]:
        """What results.json keeps of it (`afm_train`): the checkpoint and its training summary."""
        return {"checkpoint": str(self.path), **{k: v for k, v in self.info.items() if k != "history"}}


def trains(node: Any) -> bool:
    """Whether this refiner config names a refiner trained offline (AFM)."""
    return node is not None and str(node.get("kind")) == "afm"


def ensure_refiner(node: Any, robot: Any, model: Any, log: Callable[..., None] = print, progress: Any = None,
                   retrain: bool = False) -> TrainedRefiner | None:
    """The refiner network for `node` (a `refiner=` config) against the nominal `model`: cached, or trained
    and cached now (`retrain`: always). None for a refiner that trains nothing."""
    if not trains(node):
        return None
    from robocl.refiners.afm_train import ensure_checkpoint  # Lightning: imported only when a refiner trains

    net, info, path = ensure_checkpoint(node, robot, model, log=log, progress=progress, retrain=retrain)
    return TrainedRefiner(net, path, info)
