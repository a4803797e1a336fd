"""robocl: continual-learning dynamics for real robots (learned models + MPC that keep adapting).

Importing robocl never requires ROS, Hydra or Lightning; those stay at the edges
(`robocl.cli`, `robocl.dynamics.training`, `robocl_ros`).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("robocl")
except PackageNotFoundError:  # a bare checkout on sys.path
    __version__ = "0+unknown"

__all__ = ["__version__"]
