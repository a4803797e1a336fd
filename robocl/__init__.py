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

__all__ = ["__version__"]
