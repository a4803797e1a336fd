"""A plain `pip install robocl` brings PyPI's torchvision (torchdyn declares it), which cannot be imported
beside the CPU torch: `import torchvision` raises `RuntimeError: operator torchvision::nms does not exist`.
Lightning's torchmetrics imports torchvision whenever its metadata says it is installed, so robocl hides a
torchvision that fails to import (robocl/_torchvision.py). Here a stand-in torchvision, installed (package
and dist-info) on PYTHONPATH and failing the same way, is put in front of fresh interpreters."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import robocl

ERROR = "operator torchvision::nms does not exist"
ROBOCL = Path(robocl.__file__).parent
LIGHTNING = re.compile(r"^\s*(?:import|from)\s+(pytorch_lightning|lightning|lightning_fabric|torchmetrics|torchdyn)\b",
                       re.M)


def fake_torchvision(root: Path, body: str) -> Path:
    """An installed torchvision 0.28.0 (what pip resolves for torch==2.13.0) whose `__init__` is `body`."""
    (root / "torchvision").mkdir(parents=True)
    (root / "torchvision" / "__init__.py").write_text(body)
    info = root / "torchvision-0.28.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: torchvision\nVersion: 0.28.0\n")
    (info / "top_level.txt").write_text("torchvision\n")
    return root


def python(code: str, path: Path) -> subprocess.CompletedProcess:
    paths = [str(path), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=path, capture_output=True,
                          text=True, timeout=300)


def lightning_modules() -> list[str]:
    """Every robocl module that imports Lightning, torchmetrics or torchdyn at its top level."""
    found = []
    for file in sorted(ROBOCL.rglob("*.py")):
        if LIGHTNING.search(file.read_text()):
            parts = file.relative_to(ROBOCL.parent).with_suffix("").parts
            found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def test_broken_torchvision_is_treated_as_absent(tmp_path):
    path = fake_torchvision(tmp_path, "import torch\n\nraise RuntimeError(" + repr(ERROR) + ")\n")

    # The stand-in reproduces the failure: without robocl, Lightning cannot be imported.
    bare = python("import pytorch_lightning", path)
    assert bare.returncode != 0 and ERROR in bare.stderr, bare.stderr[-2000:]

    modules = lightning_modules()
    assert {"robocl.dynamics.training", "robocl.refiners.afm"} <= set(modules), modules
    run = python(f"""
        import importlib, importlib.metadata, importlib.util
        import robocl
        for name in {modules!r}:
            importlib.import_module(name)
        import pytorch_lightning as pl
        import torch
        from pytorch_lightning.utilities.imports import _TORCHVISION_AVAILABLE as pl_tv
        from torchmetrics.utilities.imports import _TORCHVISION_AVAILABLE as tm_tv
        from robocl import _torchvision
        from robocl.dynamics.training import run_trainer

        assert not pl_tv and not tm_tv, (pl_tv, tm_tv)
        assert importlib.util.find_spec("torchvision") is None
        try:
            importlib.metadata.version("torchvision")
            raise AssertionError("torchvision's metadata still found")
        except importlib.metadata.PackageNotFoundError:
            pass
        assert {ERROR!r} in _torchvision.broken, _torchvision.broken

        class Line(pl.LightningModule):  # a real Lightning fit through robocl's trainer
            def __init__(self):
                super().__init__()
                self.net = torch.nn.Linear(1, 1)

            def training_step(self, batch, _):
                x, y = batch
                return torch.nn.functional.mse_loss(self.net(x), y)

            def configure_optimizers(self):
                return torch.optim.SGD(self.parameters(), lr=0.1)

        x = torch.linspace(-1, 1, 32).unsqueeze(1)
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, 2 * x), batch_size=8)
        trainer = run_trainer(Line(), loader, None, epochs=2)
        assert trainer.current_epoch == 2, trainer.current_epoch
        print("fit ok")
    """, path)
    assert run.returncode == 0 and "fit ok" in run.stdout, run.stderr[-3000:]


def test_working_torchvision_is_left_alone(tmp_path):
    path = fake_torchvision(tmp_path, "__version__ = '0.28.0'\n")
    run = python("""
        import importlib.metadata, sys
        from robocl import _torchvision
        _torchvision.check()
        assert _torchvision.broken is None
        assert sys.modules["torchvision"].__version__ == "0.28.0"
        assert importlib.metadata.version("torchvision") == "0.28.0"
        print("left alone")
    """, path)
    assert run.returncode == 0 and "left alone" in run.stdout, run.stderr[-2000:]
