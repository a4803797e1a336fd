"""Builds components from config nodes; each config file names its factory (`module:function`).

New kinds (hypernetworks, AFM, drag predictors) plug in by adding a config file that names
their own factory, without editing a central registry.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from robocl.errors import UsageError
from robocl.utils.imports import load_callable


def build(node: DictConfig, group: str, **context: Any) -> Any:
    """Call the factory named by `node.factory` with the node and the given context."""
    spec = node.get("factory")
    if not spec:
        raise UsageError(f"{group} config has no 'factory' key naming module:function")
    return load_callable(str(spec), f"{group}.factory")(node, **context)
