"""Every input a user can get wrong, in one table, through the real commands (robocl-run, robocl-eval,
robocl-train; their in-process `main`).

Classes: config keys and values (unknown key, wrong type, out of range, not KEY=VALUE), course files,
CSV logs, ROS 1/2 bags, model files and training checkpoints. For each: exit 2, exactly one stderr line
that names the input and what is accepted, no traceback, and nothing already in the run directory (a
sentinel results.json, model.pt and .hydra/config.yaml of an earlier run) or at train.out is touched.

Other cases live beside the feature they check (test_train.py: robot files, too little data, a trained model's
files; test_train_resume.py: a checkpoint of other data or settings; test_offline_eval.py: bags; test_run_cli.py:
robocl-run's console script; test_ros_bridge.py: robocl-ros and robocl-ros-sim).
"""

from __future__ import annotations

import importlib
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import cli, one_line_exit_2

# tiny settings, so that a case the command wrongly accepted ends in seconds (and fails) instead of running
TINY = ["runtime.progress=false", "runtime.threads=1", "dynamics.ensemble_size=2", "dynamics.hidden_size=16",
        "dynamics.pretrain.episodes=2", "dynamics.pretrain.steps=20", "dynamics.pretrain.epochs=1"]
COMMON = {
    "run": [*TINY, "seeds=[0]", "methods=[mppi]", "budget.max_steps=3", "planner.population=8"],
    "eval": [*TINY, "methods=[frozen]"],
    "train": [*TINY, "train.max_epochs=1", "train.compare_sim=false"],
}
MAINS = {"run": "robocl.cli.run", "eval": "robocl.cli.eval", "train": "robocl.cli.train"}
KINDS = ("config", "course", "csv", "bag", "model", "checkpoint")
HEADER = "t,x,y,yaw,v_forward,v_lateral,yaw_rate,v_cmd,w_cmd"


@dataclass(frozen=True)
class Case:
    kind: str  # one of KINDS
    command: str  # run | eval | train
    args: tuple[str, ...]  # overrides; {i} is the folder of prepared inputs, {run} the run directory
    needles: tuple[str, ...]  # the one line names these: the input, and what is accepted
    put: tuple[str, str] | None = None  # (a file of {i}, its name in {run}): placed there first

    @property
    def id(self) -> str:
        shown = " ".join(a.replace("{i}/", "") for a in self.args)
        return f"{self.kind}:{self.command}:{shown}" + (f" ({self.put[1]}: {self.put[0]})" if self.put else "")


def C(kind: str, command: str, args: str, *needles: str, put: tuple[str, str] | None = None) -> Case:
    return Case(kind, command, tuple(args.split()), needles, put)


GOOD = "data={i}/good.csv"
CASES = [
    # ---- config: unknown key, wrong type, out of range, not an override ------------------------------------
    C("config", "run", "planner.horizn=5", "planner.horizn", "horizon", "population"),
    C("config", "run", "horizon=5", "horizon=5", "planner", "seeds"),
    C("config", "run", "planner.horizon=abc", "planner.horizon='abc'", "integer >= 1"),
    C("config", "run", "planner.horizon=2.5", "planner.horizon=2.5", "integer >= 1"),
    C("config", "run", "planner.horizon=-1", "planner.horizon=-1", "integer >= 1"),
    C("config", "run", "planner.population=1", "planner.population=1", "integer >= 2"),
    C("config", "run", "planner.temperature=0", "planner.temperature=0", "number > 0"),
    C("config", "run", "planner.precision=fp16", "planner.precision=fp16", "accepted fp32, bf16"),
    C("config", "run", "budget.max_steps=many", "budget.max_steps='many'", "integer >= 1"),
    C("config", "run", "budget.max_steps=0", "budget.max_steps=0", "integer >= 1"),
    C("config", "run", "seeds=[0,x]", "seeds=", "list of integers"),
    C("config", "run", "runtime.threads=-1", "runtime.threads=-1", "integer >= 0"),
    C("config", "run", "methods=[mppi,teleport]", "teleport", "mppi"),
    C("config", "run", "experiment=nope", "experiment=nope", "ugv_continual"),
    C("config", "run", "robot=nope", "robot=nope", "quadrotor"),
    C("config", "run", "not_an_override", "'not_an_override'", "KEY=VALUE"),
    C("config", "run", "task.gains=[[1,2,3]]", "task.gains"),
    C("config", "run", "task.intervention=[0.9,0.1]", "task.intervention"),
    C("config", "run", "methods=[mppi_afm]", "methods with _afm", "need refiner=afm"),
    C("config", "run", "experiment=ugv_afm refiner.with_learner=both", "refiner.with_learner='both'",
      "accepted stacked, residual, gated"),
    C("config", "run", "planner=cem", "planner=cem", "mppi plans with mppi"),
    C("config", "eval", f"{GOOD} metrics.kstepp=3", "metrics.kstepp", "kstep"),
    C("config", "eval", f"{GOOD} metrics.kstep=abc", "metrics.kstep='abc'", "integer >= 1"),
    C("config", "eval", f"{GOOD} metrics.kstep=0", "metrics.kstep=0", "integer >= 1"),
    C("config", "eval", f"{GOOD} data.period=-1", "data.period=-1", "number > 0"),
    C("config", "eval", f"{GOOD} data.format=xml", "data.format=xml", "ros1, ros2, csv"),
    C("config", "eval", f"{GOOD} boundaries=sometimes", "boundaries=sometimes", "labels, infer, none"),
    C("config", "eval", f"{GOOD} methods=[]", "methods=[]", "non-empty list"),
    C("config", "eval", f"{GOOD} methods=[frozen,teleport]", "'teleport'", "accepted: frozen"),
    C("config", "eval", "methods=[frozen]", "data", "data=PATH"),
    C("config", "train", f"{GOOD} train.max_epoch=3", "train.max_epoch", "max_epochs"),
    C("config", "train", f"{GOOD} train.lr=fast", "train.lr='fast'", "number > 0"),
    C("config", "train", f"{GOOD} train.max_epochs=0", "train.max_epochs=0", "integer >= 1"),
    C("config", "train", f"{GOOD} train.batch_size=1.5", "train.batch_size=1.5", "integer >= 1"),
    C("config", "train", f"{GOOD} train.val_fraction=0.95", "train.val_fraction=0.95", "<= 0.9"),
    C("config", "train", f"{GOOD} train.init=warm", "train.init=warm", "scratch, sim"),
    C("config", "train", f"{GOOD} dynamics=nope", "dynamics=nope", "ensemble, hypernet"),
    # ---- course files (robocl-run task.map=FILE) ------------------------------------------------------------
    C("course", "run", "task.map={i}/course_missing.csv", "course_missing.csv", "no such file", "x,y"),
    C("course", "run", "task.map={i}/course_empty.csv", "course_empty.csv", "empty", "x,y"),
    C("course", "run", "task.map={i}/course_header.csv", "course_header.csv", "no waypoints", "x,y row"),
    C("course", "run", "task.map={i}/course_nan.csv", "course_nan.csv", "line 3", "not finite", "x,y"),
    C("course", "run", "task.map={i}/course_inf.csv", "course_inf.csv", "line 3", "not finite", "x,y"),
    C("course", "run", "task.map={i}/course_text.csv", "course_text.csv", "line 3", "not numeric", "x,y"),
    C("course", "run", "task.map={i}/course_columns.csv", "course_columns.csv", "header", "x,y"),
    C("course", "run", "task.map={i}/course_row.csv", "course_row.csv", "line 3", "3 columns", "expected 2"),
    # ---- CSV logs (robocl-eval data=FILE and robocl-train data=FILE) ------------------------------------------
    *[c for cmd in ("eval", "train") for c in (
        C("csv", cmd, "data={i}/missing.csv", "missing.csv", "no such file"),
        C("csv", cmd, "data={i}/empty.csv", "empty.csv", "empty CSV", HEADER.replace(",", ", ")),
        C("csv", cmd, "data={i}/header_only.csv", "header_only.csv", "0 state rows", "need at least 2"),
        C("csv", cmd, "data={i}/missing_column.csv", "missing_column.csv", "w_cmd", "data.columns"),
        C("csv", cmd, "data={i}/truncated.csv", "truncated.csv", "line 201", "8 of the header's 9 fields",
          "empty where not measured"),
        C("csv", cmd, "data={i}/wrong_type.csv", "wrong_type.csv", "line 52", "'abc'", "column x", "number"),
        C("csv", cmd, "data={i}/bad_time.csv", "bad_time.csv", "line 52", "'noon'", "column t"),
        C("csv", cmd, "data={i}/backwards.csv", "backwards.csv", "line 102", "backwards", "time order"),
        C("csv", cmd, "data={i}/duplicate.csv", "duplicate.csv", "line 103", "line 102", "stamp"),
        C("csv", cmd, "data={i}/binary.csv", "binary.csv", "not a text CSV file"),
    )],
    # ---- ROS bags --------------------------------------------------------------------------------------------
    *[c for cmd in ("eval", "train") for c in (
        C("bag", cmd, "data={i}/ros2_cut", "ros2_cut", "not a readable ROS 2 bag", "truncated or damaged"),
        C("bag", cmd, "data={i}/cut.bag", "cut.bag", "not a readable ROS 1 bag", "truncated or damaged"),
        C("bag", cmd, "data={i}/notes.bag", "notes.bag", "not a readable ROS 1 bag", "not a bag file"),
        C("bag", cmd, "data={i}/empty_folder", "empty_folder", ".bag", ".csv"),
        C("bag", cmd, "data={i}/no_state", "no_state", "no state topic '/odom'"),
        C("bag", cmd, "data={i}/ros2 data.state_topic=/cmd_vel", "/cmd_vel", "expected nav_msgs/msg/Odometry"),
    )],
    # ---- model files (model=FILE) ----------------------------------------------------------------------------
    *[c for cmd, pre in (("run", ""), ("eval", f"{GOOD} ")) for c in (
        C("model", cmd, pre + "model={i}/nope.pt", "nope.pt", "no such model file", "robocl-train"),
        C("model", cmd, pre + "model={i}/model_truncated.pt", "model_truncated.pt", "damaged or truncated"),
        C("model", cmd, pre + "model={i}/model_junk.pt", "model_junk.pt", "not a readable robocl model file"),
        C("model", cmd, pre + "model={i}/model_plain.pt", "model_plain.pt", "not a robocl model artifact",
          "robocl-train writes one"),
        C("model", cmd, pre + "model={i}/model_newer.pt", "model_newer.pt", "format version 2", "reads (1)"),
        C("model", cmd, pre + "model={i}/quadrotor.pt", "quadrotor.pt", "trained for robot 'quadrotor'",
          "robot=ugv"),
    )],
    C("model", "run", "experiment=quad_continual model={i}/ugv.pt", "ugv.pt", "trained for robot 'ugv'",
      "robot=quadrotor"),
    C("model", "eval", f"{GOOD} model={{i}}/ugv.pt data.period=0.1", "ugv.pt", "control period 0.2 s", "0.1 s"),
    C("model", "eval", f"{GOOD} model={{i}}/ugv.pt robot.action_high=[2.0,1.5707963]", "ugv.pt", "action_high"),
    # ---- what a resumed run continues from: robocl-train's {run}/training.ckpt, robocl-run's {run}/units.json --
    C("checkpoint", "train", f"{GOOD} resume=true", "training.ckpt", "nothing to resume", "hydra.run.dir="),
    C("checkpoint", "train", f"{GOOD} resume=true", "training.ckpt", "damaged or truncated", "left as it is",
      put=("ckpt_garbage", "training.ckpt")),
    C("checkpoint", "train", f"{GOOD} resume=true", "training.ckpt", "damaged or truncated", "left as it is",
      put=("ckpt_truncated", "training.ckpt")),
    C("checkpoint", "train", f"{GOOD} resume=true", "training.ckpt", "not a robocl-train checkpoint",
      put=("ugv.pt", "training.ckpt")),
    C("checkpoint", "train", f"{GOOD} resume=true", "training.ckpt", "version 99", "resumes version",
      put=("ckpt_newer", "training.ckpt")),
    C("checkpoint", "run", "resume=true", "units.json", "pass hydra.run.dir="),
    C("checkpoint", "run", "resume=true", "units.json", "is damaged", "start a new run directory",
      put=("ledger_garbage", "units.json")),
    C("checkpoint", "run", "resume=true", "resume=true", "the config differs from the run's", "only runtime.*",
      put=("ledger_other", "units.json")),
]


def _log_rows(n: int = 200, dt: float = 0.2) -> list[str]:
    """A short drive of a lagged unicycle at 0.2 s in robocl's UGV columns (HEADER)."""
    rng = np.random.default_rng(0)
    x = y = yaw = v = w = 0.0
    rows = []
    for k in range(n):
        vc, wc = rng.uniform(-1, 1, 2)
        rows.append(f"{k * dt:.1f},{x:.5f},{y:.5f},{yaw:.5f},{v:.5f},0,{w:.5f},{vc:.4f},{wc:.4f}")
        v, w = v + 0.5 * (vc - v), w + 0.5 * (wc - w)
        yaw += w * dt
        x, y = x + v * np.cos(yaw) * dt, y + v * np.sin(yaw) * dt
    return rows


def _replace(rows: list[str], i: int, col: int, value: str) -> list[str]:
    out = list(rows)
    cells = out[i].split(",")
    cells[col] = value
    out[i] = ",".join(cells)
    return out


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Every bad input of the table (and the good ones they are made from) in one folder."""
    from omegaconf import OmegaConf

    from robocl.build.models import make_model
    from robocl.cli.app import compose
    from robocl.dynamics.artifact import VERSION, save_model
    from robocl.dynamics.training import CHECKPOINT_FORMAT, CHECKPOINT_VERSION
    from robocl.offline.recording import BagRecorder, write_episode
    from robocl.robots.spec import spec_from_config

    root = tmp_path_factory.mktemp("bad-inputs")

    def csv(name: str, rows: list[str], header: str = HEADER) -> None:
        (root / name).write_text(header + "\n" + "".join(r + "\n" for r in rows))

    rows = _log_rows()
    csv("good.csv", rows)
    (root / "empty.csv").write_text("")
    csv("header_only.csv", [])
    csv("missing_column.csv", [r.rsplit(",", 1)[0] for r in rows], HEADER.rsplit(",", 1)[0])
    text = (root / "good.csv").read_text()
    (root / "truncated.csv").write_text(text[: text.rindex(",") - 3])  # a recorder killed mid-row
    csv("wrong_type.csv", _replace(rows, 50, 1, "abc"))  # line 52 (the header is line 1)
    csv("bad_time.csv", _replace(rows, 50, 0, "noon"))
    csv("backwards.csv", _replace(rows, 100, 0, "3.0"))  # line 102: the clock jumps back from 19.8 s to 3 s
    csv("duplicate.csv", _replace(rows, 101, 0, rows[100].split(",")[0]))  # line 103 repeats line 102's stamp
    (root / "binary.csv").write_bytes(bytes(range(256)) * 8)
    # courses
    (root / "course_empty.csv").write_text("")
    (root / "course_header.csv").write_text("x,y\n")
    (root / "course_nan.csv").write_text("x,y\n2.0,0.0\nnan,1.0\n5.0,3.0\n")
    (root / "course_inf.csv").write_text("x,y\n2.0,0.0\n-inf,1.0\n5.0,3.0\n")
    (root / "course_text.csv").write_text("x,y\n2.0,0.0\nfour,1.0\n5.0,3.0\n")
    (root / "course_columns.csv").write_text("x\n2.0\n4.0\n")
    (root / "course_row.csv").write_text("x,y\n2.0,0.0\n4.0,1.0,0.5\n")
    # bags: a real recording of the drive, then cut
    states = np.array([[float(v) for v in r.split(",")[1:7]] for r in rows])
    actions = np.array([[float(v) for v in r.split(",")[7:]] for r in rows[:-1]])
    write_episode(root / "ros2", states, actions, None, 0.2)
    write_episode(root / "log.bag", states, actions, None, 0.2, fmt="ros1")
    shutil.copytree(root / "ros2", root / "ros2_cut")
    mcap = next((root / "ros2_cut").glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    bag = (root / "log.bag").read_bytes()
    (root / "cut.bag").write_bytes(bag[: len(bag) // 2])
    (root / "notes.bag").write_text("these are my notes, not a bag\n")
    (root / "empty_folder").mkdir()
    with BagRecorder(root / "no_state", state_topic="/other/odom") as rec:  # odometry on another topic
        rec.state(0, states[0])
        rec.state(200_000_000, states[1])
        rec.command(0, actions[0])
    # models: real (untrained) artifacts of the UGV and the quadrotor, then damaged
    for robot in ("ugv", "quadrotor"):
        cfg, _ = compose([f"robot={robot}", "dynamics.ensemble_size=2", "dynamics.hidden_size=16"])
        save_model(root / f"{robot}.pt", make_model(cfg), spec_from_config(cfg.robot),
                   OmegaConf.to_container(cfg.dynamics, resolve=True),
                   {"path": "good.csv", "fingerprint": "0", "transitions": 199, "episodes": 1,
                    "period": float(cfg.robot.dt)}, {})
    good = (root / "ugv.pt").read_bytes()
    (root / "model_truncated.pt").write_bytes(good[: len(good) // 2])
    (root / "model_junk.pt").write_text("not a model")
    payload = torch.load(root / "ugv.pt", weights_only=True)
    torch.save({"model": payload["state_dict"]}, root / "model_plain.pt")
    torch.save({**payload, "version": VERSION + 1}, root / "model_newer.pt")
    # training checkpoints
    (root / "ckpt_garbage").write_bytes(b"not a checkpoint")
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "state": payload["state_dict"]},
               root / "ckpt_full")
    full = (root / "ckpt_full").read_bytes()
    (root / "ckpt_truncated").write_bytes(full[: len(full) // 2])
    torch.save({"format": CHECKPOINT_FORMAT, "version": 99}, root / "ckpt_newer")
    (root / "ledger_garbage").write_text('{"config": {"seeds": [0]}, "uni')  # a ledger cut short
    (root / "ledger_other").write_text('{"config": {"seeds": [7]}, "units": {}}')  # the ledger of another run
    return root


def _snapshot(*roots: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `roots`: its bytes and modification time."""
    files = [p for r in roots for p in ([r] if r.is_file() else sorted(r.rglob("*"))) if p.is_file()]
    return {str(p): (p.read_bytes(), p.stat().st_mtime_ns) for p in files}


SEEN: Counter[str] = Counter()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_exit_2_and_overwrites_nothing(case, inputs, tmp_path, capsys):
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)  # an earlier run's outputs: a failing command leaves them as they are
    (run / "results.json").write_text('{"sentinel": true}\n')
    (run / "model.pt").write_bytes(b"sentinel model")
    (run / ".hydra" / "config.yaml").write_text("sentinel: true\n")
    if case.put:
        shutil.copy(inputs / case.put[0], run / case.put[1])
    out = tmp_path / "out.pt"  # robocl-train's train.out
    out.write_bytes(b"sentinel copy")
    before = _snapshot(run, out)
    args = [a.format(i=inputs, run=run) for a in case.args]
    extra = [f"train.out={out}"] if case.command == "train" else []
    main = importlib.import_module(MAINS[case.command]).main
    code, _, err = cli(main, [*COMMON[case.command], *extra, *args, f"hydra.run.dir={run}"], capsys)
    one_line_exit_2(code, err, *case.needles)
    assert err.startswith(f"robocl-{case.command}: error: "), err
    assert _snapshot(run, out) == before, sorted(set(_snapshot(run, out)) ^ set(before))
    SEEN[case.kind] += 1


def test_the_table_covers_every_input_class():
    counts = Counter(c.kind for c in CASES)
    assert set(counts) == set(KINDS), counts
    assert len({c.id for c in CASES}) == len(CASES)  # no case twice
    print(f"\nbad-input table: {len(CASES)} cases: " + ", ".join(f"{k} {counts[k]}" for k in KINDS)
          + (f"; passed this session: {sum(SEEN.values())}" if SEEN else ""))
