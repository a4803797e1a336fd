"""A run that fails or is interrupted keeps everything it finished, on disk and valid."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from robocl.eval.results import validate_results


@pytest.mark.parametrize("interrupt, code", [(False, 1), (True, 130)])
def test_finished_runs_survive_failure(tmp_path, interrupt, code):
    exe = Path(sys.executable).with_name("robocl-run")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    run_dir = tmp_path / "run"
    args = [str(exe), "runner=interrupting_runner", f"+interrupt={str(interrupt).lower()}", "runtime.progress=false",
            f"hydra.run.dir={run_dir}"]
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == code, proc.stderr
    doc = json.loads((run_dir / "results.json").read_text())
    validate_results(doc)
    assert [r["task"] for r in doc["runs"]] == ["done_before_failure"]
    assert "Traceback" not in proc.stderr
    if not interrupt:
        assert "simulated failure" in (run_dir / "error.log").read_text()
        assert "error.log" in proc.stderr
    assert not list(run_dir.glob(".*.tmp"))  # no half-written temp files left behind
