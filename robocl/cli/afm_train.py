"""`python -m robocl.cli.afm_train [experiment=quad_afm] ...`: regenerate the AFM refiner's training data
and retrain it (the cached one is otherwise reused), writing afm_train.json to the run directory."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from omegaconf import DictConfig

from robocl.cli.app import run_app
from robocl.errors import UsageError
from robocl.utils.io import atomic_write_json


def _retrain(cfg: DictConfig, run_dir: Path) -> int:
    from robocl.build.pretrained import pretrained_model
    from robocl.eval.progress import progress_bar
    from robocl.refiners.afm_train import ensure_checkpoint

    if str(cfg.refiner.get("kind")) != "afm":
        raise UsageError(f"refiner={cfg.refiner.get('kind')}: afm_train trains the AFM refiner; use refiner=afm "
                         "or an AFM experiment (experiment=ugv_afm)")
    with progress_bar(bool(cfg.runtime.progress)) as progress:
        model, _ = pretrained_model(cfg, log=progress.log)
        net, info, path = ensure_checkpoint(cfg.refiner, cfg.robot, model, log=progress.log, progress=progress,
                                            retrain=True)
    atomic_write_json(run_dir / "afm_train.json", {"checkpoint": str(path), **info})
    print(json.dumps({k: v for k, v in info.items() if k != "history"}, indent=2))
    print(f"checkpoint: {path}")
    return 0


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not any(a.split("=", 1)[0].lstrip("+") == "experiment" for a in args):
        args.insert(0, "experiment=ugv_afm")
    sys.exit(run_app("python -m robocl.cli.afm_train",
                     "Regenerate AFM training data and retrain the refiner (cached under runtime.cache_dir).",
                     _retrain, argv=args))


if __name__ == "__main__":
    main()
