"""`package.module:function` strings (a config's `factory:`, `runner:`, `refiner.data.generator`, ...) → the
object they name, or one UsageError line saying why it cannot be loaded."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from robocl.errors import UsageError


def load_callable(spec: str, key: str = "factory") -> Callable[..., Any]:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attr) if attr else module
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"{key}={spec!r} cannot be loaded ({exc}); expected 'package.module:function'") from None
