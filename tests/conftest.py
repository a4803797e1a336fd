"""Shared fixtures: small real data from the real UGV simulator, isolated caches."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import gymnasium as gym
import numpy as np
import pytest
import robocl_envs  # noqa: F401
import torch

from robocl.refiners.base import Refiner
from robocl.sim.data import collect_exploration

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def isolated_cache(request, tmp_path_factory, monkeypatch):
    """Every test run trains its own models (no stale user cache), shared within the session; a test
    marked `user_cache` keeps the user's (the config's runtime.cache_dir default)."""
    if request.node.get_closest_marker("user_cache") is None:
        monkeypatch.setenv("ROBOCL_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "robocl-cache"))
    monkeypatch.setenv("WANDB_MODE", "offline")


@pytest.fixture
def one_torch_thread():
    """The machine is shared: one torch thread (also faster than two at the drag tests' sizes)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def ugv_data():
    """Nominal-regime exploration transitions: (train, held-out)."""
    env = gym.make("robocl/UGV-v0").unwrapped
    train = collect_exploration(env, episodes=8, steps=120, seed=0)
    test = collect_exploration(env, episodes=3, steps=100, seed=99)
    return train, test


# ---- a robot that is not robocl's: the foreign UGV of the own-robot tests (test_train, test_ros2) ----------
SMALL_UGV = ["dynamics.pretrain.episodes=8", "dynamics.pretrain.steps=120", "dynamics.pretrain.epochs=25",
             "dynamics.ensemble_size=3", "dynamics.hidden_size=64", "runtime.progress=false", "runtime.threads=1"]
FOREIGN = ["task.physics.payload_kg=6", "task.physics.wheel_radius_scale=[1.25,1.25]", "task.physics.friction=0.4",
           "task.gains=[[1,1]]"]
LOOP = [(2.0, 0.0), (4.0, 1.5), (5.0, 3.5), (4.0, 5.5), (2.0, 6.0), (0.0, 5.0), (-0.5, 3.0), (0.5, 1.0)]
COURSE = "x,y\n" + "".join(f"{x},{y}\n" for x, y in LOOP * 2)  # two laps: left turns and straights


def one_line_exit_2(code: int, err: str, *needles: str) -> None:
    """A usage error as robocl promises it: exit 2, one line (naming each of `needles`), no traceback."""
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in err, err


def cli(main, args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return int(exc.value.code), out.out, out.err


def sigkill_when(module: str, args: list[str], ready, what: str, seconds: float = 180,
                 env: dict[str, str] | None = None) -> None:
    """Run `python -m module args` in a process group of its own and SIGKILL the group as soon as
    `ready()` holds (a crash at an arbitrary point of real work); fails if it ends first or `what` does
    not happen within `seconds`."""
    proc = subprocess.Popen([sys.executable, "-m", module, *args], start_new_session=True,
                            env=None if env is None else {**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + seconds
        while not ready():
            assert proc.poll() is None, f"{module} ended early: {proc.stderr.read()[-2000:]}"
            assert time.time() < deadline, f"{what}: not within {seconds:.0f} s"
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)


def _robocl(module: str, args: list[str], capsys):
    import importlib

    return cli(importlib.import_module(module).main, [*SMALL_UGV, *args], capsys)


@pytest.fixture(scope="session")
def foreign(tmp_path_factory):
    """Three recorded drives of the foreign UGV (two to train on, one held out by robocl-train) and a
    fourth, other-seed drive for evaluation; then robocl-train on the first three."""
    root = tmp_path_factory.mktemp("own-robot")
    # session scope: conftest's isolated_cache (function scope) is not active yet, so name the session cache here
    mp = pytest.MonkeyPatch()
    mp.setenv("ROBOCL_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "robocl-cache"))
    course = root / "loop.csv"
    course.write_text(COURSE)
    capsys = _Capture()
    drive = [*FOREIGN, f"task.map={course}", "methods=[mppi]", "budget.max_steps=200", "planner.population=200"]
    code, _, err = _robocl("robocl.cli.run", [*drive, "seeds=[0,1,2]", f"record={root / 'rec'}",
                                              f"hydra.run.dir={root / 'r'}"], capsys)
    assert code == 0, err
    code, _, err = _robocl("robocl.cli.run", [*drive, "seeds=[5]", f"record={root / 'heldout'}",
                                              f"hydra.run.dir={root / 'r2'}"], capsys)
    assert code == 0, err
    code, out, err = _robocl("robocl.cli.train", [f"data={root / 'rec'}", "train.max_epochs=60", "train.patience=8",
                            f"train.out={root / 'mybot.pt'}", f"hydra.run.dir={root / 'train'}"], capsys)
    assert code == 0, err
    mp.undo()
    return {"root": root, "course": course, "run": root / "train", "model": root / "train" / "model.pt",
            "heldout": root / "heldout" / "mppi_loop_s5", "out": out}


class _Capture:
    """capsys for a module fixture (pytest's is function-scoped): SystemExit codes and nothing else."""

    def readouterr(self):
        class R:
            out = err = ""
        return R()




# ---- fault injection shared by the controller, node-core and ROS bridge tests ------------------------------
class FaultyRefiner(Refiner):
    """Passes the plan through, or (per `mode`) returns NaN, a huge action, or raises."""

    def __init__(self) -> None:
        super().__init__()
        self.mode = "none"

    def refine(self, state, planned):
        if self.mode == "raise":
            raise RuntimeError("refiner fault")
        if self.mode == "nan":
            return torch.full_like(planned, float("nan"))
        if self.mode == "huge":
            return planned * 1e6 + 1e6
        return planned


class RecordingTransport:
    """The node core's transport: every command and status line, with its steady-clock time."""

    def __init__(self) -> None:
        self.commands: list[tuple[float, np.ndarray]] = []
        self.status: list[str] = []
        self.lock = threading.Lock()

    def publish_command(self, action: np.ndarray) -> None:
        with self.lock:
            self.commands.append((time.monotonic(), np.array(action, dtype=float)))

    def publish_status(self, text: str) -> None:
        with self.lock:
            self.status.append(text)
