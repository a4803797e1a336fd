"""runtime.executor=ray on a real Ray (a head started here, and local instances the runs start): the same
results as serial, resume after kill -9 of the driver, retry after kill -9 of a worker, failed units."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import COURSE, SMALL_UGV, cli

from robocl.cli.run import main as run_main
from robocl.parallel.executor import ExecutorSettings, run_units
from robocl.parallel.ledger import UnitLedger
from robocl.parallel.units import Unit

TIMING = ("_ms_", "_hz", "ms_median", "ms_p95")
# a short course and episode: the units are real MuJoCo episodes planned with MPPI, a few seconds each
TINY = ["experiment=ugv_continual", "methods=[mppi,mppi_online]", "seeds=[0,1]", "budget.max_steps=60",
        "planner.population=128", "task.gains=[[-1,1]]"]


def comparable(doc: dict) -> list[dict]:
    """A run's rows without its wall-clock metrics (those differ between any two runs)."""
    return [{k: v for k, v in row.items() if not any(t in k for t in TIMING)} for row in doc["runs"]]


def results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("course") / "loop.csv"
    path.write_text(COURSE)
    return path


@pytest.fixture(scope="module")
def serial_run(tmp_path_factory, course):
    """The reference: the tiny experiment run serially (its models are trained here, then cached)."""
    run_dir = tmp_path_factory.mktemp("serial")
    mp = pytest.MonkeyPatch()
    mp.setenv("ROBOCL_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "robocl-cache"))
    with pytest.raises(SystemExit) as exc:
        run_main([*SMALL_UGV, *TINY, f"task.map=[{course}]", f"hydra.run.dir={run_dir}"])
    mp.undo()
    assert exc.value.code == 0
    return run_dir


@pytest.fixture(scope="module")
def ray_head():
    """A real one-machine Ray cluster with 2 CPUs (`ray start --head --block`), stopped by its process group."""
    port = 20000 + os.getpid() % 20000
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}  # loopback only
    head = subprocess.Popen([str(Path(sys.executable).parent / "ray"), "start", "--head", "--block",
                             f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                             "--node-ip-address=127.0.0.1"], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while subprocess.run([str(Path(sys.executable).parent / "ray"), "status", f"--address={address}"],
                             env=env, capture_output=True).returncode != 0:
            assert head.poll() is None and time.time() < deadline, "ray start --head did not come up"
            time.sleep(1)
        mp = pytest.MonkeyPatch()
        mp.setenv("RAY_AUTH_MODE", "disabled")
        yield address
        mp.undo()
    finally:
        workers = _descendants(head)
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
        _kill(workers)


def test_ray_cluster_gives_the_serial_results(serial_run, ray_head, course, tmp_path, capsys):
    code, _, err = cli(run_main, [*SMALL_UGV, *TINY, f"task.map=[{course}]", "runtime.executor=ray",
                                  "runtime.workers=2", f"runtime.ray.address={ray_head}",
                                  f"hydra.run.dir={tmp_path}"], capsys)
    assert code == 0, err
    ours, reference = results(tmp_path), results(serial_run)
    assert [r["method"] for r in ours["runs"]] == ["mppi", "mppi", "mppi_online", "mppi_online"]  # canonical order
    assert comparable(ours) == comparable(reference)
    assert len(ours["units"]["workers"]) == 2  # both workers ran units
    assert sorted(p.name for p in (tmp_path / "units").iterdir()) == [
        "mppi_loop_s0.log", "mppi_loop_s1.log", "mppi_online_loop_s0.log", "mppi_online_loop_s1.log"]


def _driver(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "robocl.cli.run", *args], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _done_units(run_dir: Path) -> int:
    try:
        doc = json.loads((run_dir / "units.json").read_text())
    except (OSError, ValueError):
        return 0
    return sum(v["status"] == "done" for v in doc["units"].values())


def _wait(condition, proc: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.time() + seconds
    while not condition():
        assert proc.poll() is None, f"the run ended early: {proc.stderr.read()[-2000:]}"
        assert time.time() < deadline, "timed out"
        time.sleep(0.2)


def _descendants(proc: subprocess.Popen) -> list[psutil.Process]:
    try:
        return psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _kill(processes: list[psutil.Process]) -> None:
    for p in processes:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass


def _kill_group(proc: subprocess.Popen, known: list[psutil.Process] = ()) -> None:
    """The driver and the local Ray instance it started (Ray workers sit in process groups of their own)."""
    others = [*known, *_descendants(proc)]
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _kill(others)
    proc.wait(30)


def test_kill_9_of_the_driver_then_resume_equals_an_uninterrupted_run(serial_run, course, tmp_path, capsys):
    args = [*SMALL_UGV, *TINY, f"task.map=[{course}]", "runtime.executor=ray", "runtime.workers=1",
            f"hydra.run.dir={tmp_path}"]
    proc = _driver(args)
    try:
        _wait(lambda: _done_units(tmp_path) >= 1, proc)
        ray_processes = _descendants(proc)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        _kill_group(proc, ray_processes if "ray_processes" in locals() else [])
    finished = _done_units(tmp_path)
    assert 1 <= finished < 4
    code, _, err = cli(run_main, [*args, "resume=true"], capsys)
    assert code == 0, err
    assert f"resume: {finished} of 4 units already finished" in err
    assert comparable(results(tmp_path)) == comparable(results(serial_run))


def _unit_workers(driver: subprocess.Popen) -> list[psutil.Process]:
    """This driver's Ray workers while they run a unit (Ray titles them after the task)."""
    found = []
    for proc in _descendants(driver):
        try:
            if proc.cmdline()[:1] and proc.cmdline()[0].startswith("ray::robocl_unit"):
                found.append(proc)
        except psutil.NoSuchProcess:
            pass
    return found


def test_a_worker_killed_mid_unit_is_retried_and_the_results_stay(serial_run, course, tmp_path):
    proc = _driver([*SMALL_UGV, *TINY, f"task.map=[{course}]", "runtime.executor=ray", "runtime.workers=2",
                    f"hydra.run.dir={tmp_path}"])
    try:
        _wait(lambda: bool(_unit_workers(proc)), proc)
        victim = _unit_workers(proc)[0]
        victim.kill()
        assert proc.wait(240) == 0, proc.stderr.read()[-2000:]
    finally:
        _kill_group(proc)
    assert comparable(results(tmp_path)) == comparable(results(serial_run))


def test_resume_refuses_another_config_and_a_directory_without_a_ledger(serial_run, course, tmp_path, capsys):
    code, _, err = cli(run_main, [*SMALL_UGV, *TINY, f"task.map=[{course}]", "seeds=[0,1,2]", f"resume={serial_run}"],
                       capsys)
    assert code == 2 and "config differs from the run's in seeds" in err and err.count("\n") == 1
    code, _, err = cli(run_main, [*SMALL_UGV, *TINY, "resume=true", f"hydra.run.dir={tmp_path}"], capsys)
    assert code == 2 and "holds no units.json" in err


# ---- the executor on its own: a unit that raises is recorded, the others finish ----------------------------
FLAKY_UNIT = """
def flaky_unit(shared, params, ctx):
    ctx.log(f"square of {params['x']}")
    if params["x"] == 2:
        raise RuntimeError("two is not allowed")
    return {"rows": [{"method": "square", "seed": params["x"], "task": "t", "value": params["x"] ** 2 + shared}]}
"""


def flaky_unit():
    """A unit function defined outside any importable module, so Ray ships it by value to its workers."""
    namespace = {"__name__": "__main__"}
    exec(FLAKY_UNIT, namespace)
    return namespace["flaky_unit"]


@pytest.mark.parametrize("kind", ["serial", "ray"])
def test_a_failing_unit_is_recorded_and_the_others_finish(kind, tmp_path):
    units = [Unit(f"x{x}", {"x": x}) for x in range(4)]
    ledger = UnitLedger(tmp_path, {"seeds": [0]})
    run_units(flaky_unit(), 10, units, ExecutorSettings(kind, workers=2), ledger.record)
    assert [r["value"] for r in ledger.rows(units)] == [10, 11, 19]
    assert ledger.failures() == [{"unit": "x2", "error": "RuntimeError: two is not allowed", "log": "units/x2.log"}]
    assert "two is not allowed" in (tmp_path / "units" / "x2.log").read_text()
    again = UnitLedger(tmp_path, {"seeds": [0]}, resume=True)
    assert [u.key for u in again.pending(units)] == ["x2"]  # resume runs the failed unit again


def test_projected_wall_time_replays_the_executors_schedule():
    """Units go, in canonical order, to the first free worker: hand-computed makespans."""
    from robocl.parallel.schedule import makespan, projection

    assert makespan([4, 3, 2, 1], 1) == 10
    assert makespan([4, 3, 2, 1], 2) == 5  # w0: 4 then 1; w1: 3 then 2
    assert makespan([1, 1, 1, 1, 1, 5], 2) == 7  # the long unit comes last: w0 free at 2 takes it
    assert makespan([5, 1, 1, 1, 1, 1], 2) == 5
    assert makespan([4, 3, 2, 1], 16) == 4
    assert projection([4, 3, 2, 1], (1, 2)) == {"1": 10, "2": 5, "bound": 4}
    with pytest.raises(ValueError):
        makespan([1.0], 0)
