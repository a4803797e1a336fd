"""robocl: continual-learning dynamics for real robots (learned models + MPC that keep adapting).

Importing robocl never requires ROS, Hydra or Lightning; those stay at the edges
(`robocl.cli`, `robocl.dynamics.training`, `robocl_ros`).
"""

from importlib.metadata import PackageNotFoundError, version

from robocl import _torchvision

# Before anything imports Lightning: a torchvision that cannot be imported (PyPI's, beside the CPU
# torch) counts as absent, or torchmetrics would import it and fail (see robocl/_torchvision.py).
_torchvision.install()

try:
    __version__ = version("robocl")
except PackageNotFoundError:  # a bare checkout on sys.path
    __version__ = "0+unknown"

# The public API, imported on first use so that `import robocl` stays light (no torch, no MuJoCo):
# `from robocl import MPPI, GaussianEnsemble, Controller`.
_API = {
    "Controller": "robocl.control",
    "MPPI": "robocl.planning.mppi",
    "CEM": "robocl.planning.cem",
    "BatchedMPPI": "robocl.planning.batched",
    "WaypointCost": "robocl.planning.costs",
    "DynamicsModel": "robocl.dynamics.base",
    "Transitions": "robocl.dynamics.base",
    "GaussianEnsemble": "robocl.dynamics.ensemble",
    "GaussianMLP": "robocl.dynamics.mlp",
    "HyperNetwork": "robocl.dynamics.hypernet",
    "ContinualStrategy": "robocl.continual.base",
    "OnlineFinetune": "robocl.continual.online",
    "HyperCRL": "robocl.continual.hypercrl",
    "Refiner": "robocl.refiners.base",
    "AFMRefiner": "robocl.refiners.afm",
    "PlanarBodyCodec": "robocl.robots.codec",
    "collect_exploration": "robocl.sim.data",
    "train_offline": "robocl.dynamics.training",
    "load_model": "robocl.build.models",
    "UsageError": "robocl.errors",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        import importlib

        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'robocl' has no attribute {name!r}")
