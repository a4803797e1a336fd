"""A torchvision that cannot be imported counts as absent, so Lightning still imports.

torchdyn (a dependency) declares torchvision, so a plain `pip install robocl` brings PyPI's
torchvision 0.28.0, the one release whose metadata accepts torch==2.13.0. That wheel is built against
PyPI's CUDA torch: its `_C` extension links libtorch_cuda.so and libc10_cuda.so, which the CPU torch
pinned here lacks, so `import torchvision` raises `RuntimeError: operator torchvision::nms does not
exist`. `import pytorch_lightning` imports torchmetrics, and torchmetrics imports torchvision at
import time whenever lightning_utilities' `RequirementCache("torchvision")` says it is installed. That
check never imports it: it reads the installed distribution (`importlib.metadata.version`) and,
without one, asks `importlib.util.find_spec`. So a broken torchvision counts as present and Lightning
(hence every training path) fails to import.

`install()`, run by `import robocl`, puts a finder first on `sys.meta_path`. The first time Lightning,
torchmetrics or torchdyn is imported, it tries `import torchvision` once. If that raises, torchvision
is made absent in this process at both places those checks look: `sys.modules["torchvision"] = None`
(find_spec answers None, an import raises ModuleNotFoundError) and
`importlib.metadata.distribution("torchvision")` raises PackageNotFoundError. A torchvision that
imports, or none at all, is left as it is; nothing outside the process changes. `broken` keeps the
reason.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.metadata
import importlib.util
import logging
import sys

NAME = "torchvision"
# Imported first, these decide (directly or through torchmetrics) whether torchvision is there.
TRIGGERS = frozenset({"pytorch_lightning", "lightning", "lightning_fabric", "torchmetrics", "torchdyn"})

broken: str | None = None  # "RuntimeError: ..." once a failed torchvision was hidden

log = logging.getLogger(__name__)


def check() -> None:
    """Import torchvision once; if that fails, hide it from imports and from package metadata."""
    global broken
    if NAME in sys.modules:  # imported (so it works), or already hidden
        return
    try:
        if importlib.util.find_spec(NAME) is None:
            return
    except (ImportError, ValueError):
        return
    try:
        importlib.import_module(NAME)
    except Exception as exc:  # RuntimeError (operator torchvision::nms does not exist), OSError, ImportError
        for name in [n for n in sys.modules if n == NAME or n.startswith(NAME + ".")]:
            del sys.modules[name]  # the submodules it imported before failing
        sys.modules[NAME] = None
        broken = f"{type(exc).__name__}: {exc}"
        log.debug("torchvision cannot be imported (%s); treated as not installed", broken)


class _Guard(importlib.abc.MetaPathFinder):
    """Runs `check()` before the first trigger import; answers no import itself."""

    def __init__(self) -> None:
        self.checked = False

    def find_spec(self, fullname, path=None, target=None):
        if not self.checked and fullname in TRIGGERS:
            self.checked = True
            check()
        return None

    def find_distributions(self, context=None):
        name = getattr(context, "name", None)
        if broken is not None and name and name.lower().replace("_", "-").replace(".", "-") == NAME:
            raise importlib.metadata.PackageNotFoundError(name)
        return iter(())


def install() -> None:
    """Idempotent: one guard, first on sys.meta_path."""
    if not any(isinstance(finder, _Guard) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Guard())
