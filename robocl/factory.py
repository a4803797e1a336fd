"""Builds components from config nodes; each config file names its factory (`module:function`).

New kinds (hypernetworks, AFM, drag predictors) plug in by adding a config file that names
their own factory, without editing a central registry.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig

from robocl.errors import UsageError


def load_callable(spec: str, key: str = "factory") -> Callable[..., Any]:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attr) if attr else module
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"{key}={spec!r} cannot be loaded ({exc}); expected 'package.module:function'") from None


def build(node: DictConfig, group: str, **context: Any) -> Any:
    """Call the factory named by `node.factory` with the node and the given context."""
    spec = node.get("factory")
    if not spec:
        raise UsageError(f"{group} config has no 'factory' key naming module:function")
    return load_callable(str(spec), f"{group}.factory")(node, **context)
