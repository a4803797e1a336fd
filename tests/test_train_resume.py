"""robocl-train survives kill -9: after every epoch the fit's whole state is checkpointed atomically into the run
directory (training.ckpt), and `resume=true hydra.run.dir=DIR` (or `resume=DIR`) ends with the same epochs,
metrics and weights (bitwise) as the uninterrupted run with the same seed. A damaged checkpoint, or one of other
data or settings, is one line, exit 2, and is left as it is; a finished run resumed rewrites nothing."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from conftest import cli, one_line_exit_2

# ~0.4 s an epoch on one thread; lr and patience such that early stopping ends the fit (epoch 7, best 5)
SMALL = ["runtime.progress=false", "runtime.threads=1", "train.compare_sim=false", "dynamics.ensemble_size=2",
         "dynamics.hidden_size=32", "train.max_epochs=20", "train.patience=2", "train.lr=0.01",
         "train.batch_size=32"]
OUTPUTS = ("model.pt", "results.json", "summary.md", "training.png", "errors.png", "training.ckpt")


def write_drives(root: Path, steps: int = 3000, seeds=(0, 1, 2)) -> Path:
    """CSV drives of a lagged unicycle at 0.2 s (robocl's UGV state and command columns)."""
    root.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        rng = np.random.default_rng(seed)
        alpha = 1.0 - math.exp(-0.2 / 0.3)
        x = y = yaw = v = u = w = 0.0
        cmd = (0.5, 0.0)
        rows = ["t,x,y,yaw,v_forward,v_lateral,yaw_rate,v_cmd,w_cmd"]
        for i in range(steps + 1):
            if rng.random() < 0.35:
                cmd = (rng.uniform(-1, 1), rng.uniform(-1.5, 1.5))
            rows.append(f"{0.2 * i:.1f}," + ",".join(f"{q:.6f}" for q in (x, y, yaw, v, u, w, *cmd)))
            v += alpha * (cmd[0] - v) + rng.normal(0, 0.005)
            w += alpha * (cmd[1] - w) + rng.normal(0, 0.005)
            u = 0.1 * v * w
            x += (v * math.cos(yaw) - u * math.sin(yaw)) * 0.2
            y += (v * math.sin(yaw) + u * math.cos(yaw)) * 0.2
            yaw = math.remainder(yaw + w * 0.2, 2 * math.pi)
        (root / f"d{seed}.csv").write_text("\n".join(rows) + "\n")
    return root


def robocl_train(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("robocl-train")), *SMALL, *args]


def environ() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "model.pt", map_location="cpu", weights_only=True)["state_dict"]


def results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def assert_same_run(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k  # bitwise: same seed, same threads, generators resumed
    ra, rb = results(a), results(b)
    assert ra["history"] == rb["history"]
    drop = lambda m: {k: v for k, v in m.items() if not k.endswith("_s")}  # noqa: E731  (timings differ)
    assert drop(ra["summary"]["model"]) == drop(rb["summary"]["model"])
    assert ra["horizon_errors"] == rb["horizon_errors"]


def test_killed_train_resumes_to_the_uninterrupted_result(tmp_path):
    rec = write_drives(tmp_path / "rec")
    full, cut = tmp_path / "full", tmp_path / "cut"
    done = subprocess.run(robocl_train(f"data={rec}", f"hydra.run.dir={full}"), env=environ(), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    history = results(full)["history"]
    assert history["stopped_by"] == "early_stopping" and 2 < history["best_epoch"] < history["epochs"], history

    proc = subprocess.Popen(robocl_train(f"data={rec}", f"hydra.run.dir={cut}"), env=environ(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt, deadline, saved = cut / "training.ckpt", time.monotonic() + 240, None
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if ckpt.exists():  # written atomically: always a whole checkpoint
                saved = torch.load(ckpt, map_location="cpu", weights_only=True)
                if saved["epochs"] >= 2:
                    break
            time.sleep(0.02)
        assert proc.poll() is None, "robocl-train finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert saved is not None and not saved["done"] and saved["epochs"] < history["best_epoch"], saved["epochs"]
    assert not (cut / "model.pt").exists()  # killed mid-fit

    resumed = subprocess.run(robocl_train(f"data={rec}", "resume=true", f"hydra.run.dir={cut}"), env=environ(),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {cut} after epoch" in " ".join(resumed.stderr.split())
    assert_same_run(full, cut)
    assert not list(cut.glob(".*.tmp"))

    # a finished run resumed (resume=DIR): says so, rewrites nothing
    before = {name: (cut / name).stat().st_mtime_ns for name in OUTPUTS}
    again = subprocess.run(robocl_train(f"data={rec}", f"resume={cut}"), env=environ(), capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "is complete" in again.stdout and "nothing rewritten" in again.stdout
    assert {name: (cut / name).stat().st_mtime_ns for name in OUTPUTS} == before


def test_damaged_or_foreign_checkpoint_is_one_line_exit_2_and_kept(tmp_path, capsys):
    from robocl.cli.train import main

    rec = write_drives(tmp_path / "rec", steps=400)
    base = [f"data={rec}", "train.max_epochs=3"]
    run = tmp_path / "run"
    code, _, err = cli(main, [*SMALL, *base, f"hydra.run.dir={run}"], capsys)
    assert code == 0, err
    good = (run / "training.ckpt").read_bytes()

    def resume_copy(name: str, ckpt: bytes | None, *extra: str):
        d = tmp_path / name
        shutil.copytree(run, d)
        if ckpt is not None:
            (d / "training.ckpt").write_bytes(ckpt)
        return (d, *cli(main, [*SMALL, *base, *extra, f"resume={d}"], capsys))

    for name, damaged in (("truncated", good[: len(good) // 2]), ("garbage", b"not a checkpoint")):
        d, code, _, err = resume_copy(name, damaged)
        one_line_exit_2(code, err, "is damaged or truncated", "left as it is")
        assert (d / "training.ckpt").read_bytes() == damaged  # not overwritten

    d, code, _, err = resume_copy("settings", None, "train.lr=0.002")
    one_line_exit_2(code, err, "belongs to other data or settings", "train.lr (0.01 in the checkpoint, 0.002 now)")
    assert (d / "training.ckpt").read_bytes() == good
    other = write_drives(tmp_path / "other", steps=400, seeds=(5, 6, 7))
    d, code, _, err = resume_copy("data", None, f"data={other}")
    one_line_exit_2(code, err, "belongs to other data or settings", "data.fingerprint")
    assert (d / "training.ckpt").read_bytes() == good

    code, _, err = cli(main, [*SMALL, *base, "resume=true", f"hydra.run.dir={tmp_path / 'empty'}"], capsys)
    one_line_exit_2(code, err, "holds no training checkpoint")

    # killed after the fit, before the outputs: resume writes them (the fit is not redone)
    state = torch.load(run / "training.ckpt", map_location="cpu", weights_only=True)
    buf = tmp_path / "done.ckpt"
    torch.save({**state, "complete": False}, buf)
    d = tmp_path / "outputs"
    shutil.copytree(run, d)
    shutil.copy(buf, d / "training.ckpt")
    for name in ("model.pt", "results.json", "summary.md"):
        (d / name).unlink()
    code, _, err = cli(main, [*SMALL, *base, f"resume={d}"], capsys)
    assert code == 0, err
    assert_same_run(run, d)
    assert torch.load(d / "training.ckpt", map_location="cpu", weights_only=True)["complete"]
