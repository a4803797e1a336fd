"""robocl-run experiments that are not fanned out resume too: the drag experiments from their training
checkpoints (kill -9 mid-training, then resume=true: the uninterrupted run's rows); a soak refuses.

Real code: procedurally generated cabinets, real drag training, a real `robocl-run` subprocess."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import cli, sigkill_when

from robocl.cli.run import main as run_main

TINY_DRAG = ["experiment=cabinet_drag", "methods=[drag_ms,nearest_part]", "runtime.progress=false",
             "runtime.threads=1", "drag.objects=3", "drag.heldout_objects=1", "drag.val_objects=1", "drag.states=1",
             "drag.drags=4", "drag.points=512", "drag.stage1_epochs=3", "drag.stage2_epochs=3", "drag.compile=false",
             "drag.timing_repeats=3", "drag.mpc.episodes=1", "drag.mpc.population=8", "drag.mpc.iterations=1",
             "drag.mpc.renders=0"]
NOT_COMPARED = ("_ms", "wall", "seconds")


def rows(run_dir: Path) -> list[dict]:
    """The run's rows without its timing rows and wall-clock metrics."""
    doc = json.loads((run_dir / "results.json").read_text())
    return [{k: v for k, v in r.items() if not any(t in k for t in NOT_COMPARED)}
            for r in doc["runs"] if r["task"] != "timing"]


def test_cabinet_drag_killed_mid_training_resumes_to_the_uninterrupted_rows(tmp_path, capsys, monkeypatch):
    cache = tmp_path / "cache"
    args = [*TINY_DRAG, f"runtime.cache_dir={cache}"]
    # the dataset first (shared by both runs; generating it is not what is tested)
    code, _, err = cli(run_main, [*args, "methods=[nearest_part]", f"hydra.run.dir={tmp_path / 'data'}"], capsys)
    assert code == 0, err
    killed = tmp_path / "killed"
    # killed once the first epoch's checkpoint is in the cache
    sigkill_when("robocl.cli.run", [*args, f"hydra.run.dir={killed}"],
                 lambda: bool(list(cache.glob("drag-drag_ms-*.pt"))), "a drag checkpoint", seconds=300)
    code, _, err = cli(run_main, [*args, "resume=true", f"hydra.run.dir={killed}"], capsys)
    assert code == 0, err
    assert "resuming" in err and "after epoch" in err  # training went on from its checkpoint
    # the uninterrupted reference: the same settings trained from scratch into another cache
    code, _, err = cli(run_main, [*TINY_DRAG, f"runtime.cache_dir={tmp_path / 'fresh'}",
                                  f"hydra.run.dir={tmp_path / 'whole'}"], capsys)
    assert code == 0, err
    assert rows(killed) == rows(tmp_path / "whole")
    assert {r["method"] for r in rows(killed)} == {"drag_ms", "nearest_part"}
    by_size = json.loads((killed / "results.json").read_text())["iou_by_size"]["drag_ms"]
    assert set(by_size) == {"instance", "category", "val"}  # val: the split settings are chosen on
    assert "## drag_ms, instance" in (killed / "iou_by_size.md").read_text()


def test_resume_of_a_checkpointed_experiment_checks_its_run_directory(tmp_path, capsys):
    code, _, err = cli(run_main, [*TINY_DRAG, "resume=true", f"hydra.run.dir={tmp_path}"], capsys)
    assert code == 2 and "holds no results.json of a cabinet_drag run" in err and err.count("\n") == 1
    (tmp_path / "results.json").write_text(json.dumps({"config": {"seeds": [5]}}))
    code, _, err = cli(run_main, [*TINY_DRAG, "resume=true", f"hydra.run.dir={tmp_path}"], capsys)
    assert code == 2 and "the config differs from the run's in" in err and err.count("\n") == 1


def test_a_soak_does_not_resume(tmp_path, capsys):
    code, _, err = cli(run_main, ["experiment=soak", "resume=true", f"hydra.run.dir={tmp_path}"], capsys)
    assert code == 2 and "does not resume: a soak measures one uninterrupted run" in err
    assert err.count("\n") == 1
