"""robocl-train dynamics=hypernet: one task (embedding) per regime label, trained jointly on recorded data.

The data: CSV drives of a lagged unicycle (a velocity lag toward the commanded (v, w)) in two regimes with
opposite responses to the forward command: `nominal` and `reversed` (the command's v scaled by -1, as the
AFM gains (-1, 1)). Some nominal drives carry no label at all (they belong to train.nominal_label)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import cli

from robocl.dynamics.base import Transitions
from robocl.eval.results import validate_results

SMALL_HNET = ["dynamics=hypernet", "dynamics.target.hidden_size=64", "dynamics.target.hidden_layers=2",
              "dynamics.hnet_hidden=[32,32]", "dynamics.chunk_size=1000", "runtime.progress=false",
              "runtime.threads=1", "train.compare_sim=false", "train.patience=15", "train.batch_size=128",
              "train.lr=0.003"]
GAIN = {"nominal": 1.0, "reversed": -1.0, "half": 0.5, "slippery": 0.7, None: 1.0}


def drive(parts: list[tuple[str | None, int]], seed: int) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """(states (L+1, 6), commands (L, 2), labels (L,)): planar state x, y, yaw, v_forward, v_lateral, yaw_rate
    at 0.2 s; a new random command about every 3 steps; v follows gain * v_cmd with a 0.3 s lag, w follows w_cmd,
    and the base slips sideways in turns."""
    rng = np.random.default_rng(seed)
    dt, alpha = 0.2, 1.0 - math.exp(-0.2 / 0.3)
    x = y = yaw = v = u = w = 0.0
    cmd = np.array([0.5, 0.0])
    states, commands, labels = [], [], []
    for label, steps in parts:
        for _ in range(steps):
            if rng.random() < 0.35:
                cmd = np.array([rng.uniform(-1.0, 1.0), rng.uniform(-1.5, 1.5)])
            states.append([x, y, yaw, v, u, w])
            commands.append(cmd.copy())
            labels.append(label)
            v += alpha * (GAIN[label] * cmd[0] - v) + rng.normal(0, 0.005)
            w += alpha * (cmd[1] - w) + rng.normal(0, 0.005)
            u = 0.1 * v * w  # side slip in turns (no state entry or target is constant)
            x += (v * math.cos(yaw) - u * math.sin(yaw)) * dt
            y += (v * math.sin(yaw) + u * math.cos(yaw)) * dt
            yaw = math.remainder(yaw + w * dt, 2 * math.pi)
    states.append([x, y, yaw, v, u, w])
    return np.asarray(states), np.asarray(commands), labels


def write_csv(path: Path, parts: list[tuple[str | None, int]], seed: int) -> None:
    states, commands, labels = drive(parts, seed)
    rows = ["t,x,y,yaw,v_forward,v_lateral,yaw_rate,v_cmd,w_cmd,regime"]
    for i, s in enumerate(states):
        c = commands[min(i, len(commands) - 1)]
        label = labels[min(i, len(labels) - 1)] or ""
        rows.append(f"{0.2 * i:.1f}," + ",".join(f"{v:.6f}" for v in (*s, *c)) + f",{label}")
    path.write_text("\n".join(rows) + "\n")


def transitions(parts, seed) -> Transitions:
    states, commands, _ = drive(parts, seed)
    t = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    return Transitions(t(states[:-1]), t(commands), t(states[1:]))


def train(args, capsys):
    from robocl.cli.train import main

    return cli(main, [*SMALL_HNET, *args], capsys)


def evaluate(args, capsys):
    from robocl.cli.eval import main

    return cli(main, ["runtime.progress=false", "runtime.threads=1", *args], capsys)


def results(run_dir: Path) -> dict:
    doc = json.loads((run_dir / "results.json").read_text())
    validate_results(doc)
    return doc


def load(model_path: Path, dynamics: str = "hypernet"):
    from robocl.build.models import model_from_artifact
    from robocl.cli.app import compose

    cfg, _ = compose([f"model={model_path}", f"dynamics={dynamics}", "runtime.progress=false"], "eval")
    return model_from_artifact(cfg, log=lambda *_: None)


@pytest.fixture(scope="module")
def regimes(tmp_path_factory):
    """Six drives (d5, the last, is robocl-train's validation episode: both regimes), then robocl-train."""
    root = tmp_path_factory.mktemp("regimes")
    rec = root / "rec"
    rec.mkdir()
    plans = [[(None, 150)], [("reversed", 150)], [("nominal", 150)], [("reversed", 150)],
             [("nominal", 75), ("reversed", 75)], [("reversed", 75), ("nominal", 75)]]
    for i, parts in enumerate(plans):
        write_csv(rec / f"d{i}.csv", parts, seed=i)
    torch.set_num_threads(1)
    mp = pytest.MonkeyPatch()
    mp.setenv("ROBOCL_CACHE_DIR", str(root / "cache"))
    code, out, err = train([f"data={rec}", "train.max_epochs=150", f"hydra.run.dir={root / 'train'}"], _Quiet())
    mp.undo()
    assert code == 0, err
    return {"root": root, "rec": rec, "run": root / "train", "model": root / "train" / "model.pt", "out": out}


class _Quiet:
    def readouterr(self):
        class R:
            out = err = ""
        return R()


def test_hypernet_learns_one_task_per_regime_label(regimes):
    doc = results(regimes["run"])
    m = doc["summary"]["model"]
    tasks = doc["tasks"]
    print("robocl-train dynamics=hypernet:", {k: m[k] for k in ("val_dyn_mse", "nominal_val_dyn_mse", "epochs")},
          tasks)
    assert list(tasks) == ["nominal", "reversed"] and doc["nominal_task"] == "nominal" and m["num_tasks"] == 2
    # unlabeled d0 counts as nominal: 150 + 150 + 75 train transitions of each regime, 75 + 75 validation
    assert tasks["nominal"]["train_transitions"] == 375 and tasks["reversed"]["train_transitions"] == 375
    assert tasks["nominal"]["val_transitions"] == 75 and tasks["reversed"]["val_transitions"] == 75
    # overall: each validation transition under its own task's embedding = the mean of the two tasks' errors
    both = (tasks["nominal"]["val_dyn_mse"] + tasks["reversed"]["val_dyn_mse"]) / 2
    assert m["val_dyn_mse"] == pytest.approx(both, rel=1e-4)
    # the nominal embedding on the reversed half of the validation data is far off
    assert m["nominal_val_dyn_mse"] > 5 * m["val_dyn_mse"], m
    assert "task 'reversed'" in (regimes["run"] / "summary.md").read_text()
    assert (regimes["run"] / "errors.png").stat().st_size > 10_000


def test_each_regime_is_predicted_best_by_its_own_embedding_on_held_out_drives(regimes, tmp_path, capsys):
    """Held-out drives (other seeds): the regime's embedding beats the other regime's by a wide margin, and
    beats a single-task ensemble trained on the same mixed data (which cannot tell the regimes apart)."""
    from robocl.dynamics.training import one_step_mse

    model, info = load(regimes["model"])
    assert info["tasks"] == ["nominal", "reversed"] and model.current_task == 0
    held = {"nominal": transitions([("nominal", 200)], seed=100), "reversed": transitions([("reversed", 200)], 101)}
    errs = {(r, t): float(model.task_errors(d, [t])[0]) for r, d in held.items() for t in (0, 1)}
    print("held-out one-step error (regime, embedding):", errs)
    assert errs[("nominal", 0)] * 5 < errs[("nominal", 1)], errs
    assert errs[("reversed", 1)] * 5 < errs[("reversed", 0)], errs
    code, _, err = cli(__import__("robocl.cli.train", fromlist=["main"]).main,
                       [f"data={regimes['rec']}", "dynamics.hidden_size=64", "dynamics.ensemble_size=3",
                        "train.max_epochs=40", "runtime.progress=false", "runtime.threads=1",
                        "train.compare_sim=false", f"hydra.run.dir={tmp_path / 'ens'}"], capsys)
    assert code == 0, err
    ensemble, _ = load(tmp_path / "ens" / "model.pt", "ensemble")
    with torch.no_grad():
        for r, t in (("nominal", 0), ("reversed", 1)):
            with model.using_task(t):
                own = float(one_step_mse(model, held[r]))
            mixed = float(one_step_mse(ensemble, held[r]))
            print(f"{r}: hypernet own embedding {own:.4f}, ensemble on mixed data {mixed:.4f}")
            assert own * 3 < mixed, (r, own, mixed)


def test_artifact_round_trip_keeps_labels_and_plans_on_the_nominal_task(regimes):
    from robocl.dynamics.artifact import read_model

    payload = read_model(regimes["model"])
    assert payload["extra"] == {"tasks": ["nominal", "reversed"], "nominal_task": "nominal"}
    assert payload["dynamics"]["kind"] == "hypernet"
    model, _ = load(regimes["model"])
    assert model.task_labels == ["nominal", "reversed"] and model.num_tasks == 2 and model.current_task == 0
    # step() (what the planner rolls out) is the nominal embedding's prediction
    d = transitions([("nominal", 20)], seed=7)
    with model.using_task(1):
        reversed_step = model.step(d.states, d.actions)
    assert model.current_task == 0
    nominal_step = model.step(d.states, d.actions)
    with model.using_task(0):
        assert torch.equal(model.step(d.states, d.actions), nominal_step)
    assert not torch.allclose(nominal_step, reversed_step)


def test_eval_hypercrl_starts_each_trained_label_on_its_trained_embedding(regimes, tmp_path, capsys):
    """robocl-eval model=... methods=[frozen,hypercrl] on a log in another order than training's (reversed
    first) with a label the model never saw (half): hypercrl predicts `reversed` with its trained embedding
    from the first step (frozen, the nominal model, is far off there)."""
    log = tmp_path / "heldout.csv"
    write_csv(log, [("reversed", 80), ("nominal", 80), ("half", 80)], seed=200)
    code, out, err = evaluate([f"data={log}", f"model={regimes['model']}", "methods=[frozen,hypercrl]",
                               f"hydra.run.dir={tmp_path / 'e'}"], capsys)
    assert code == 0, err
    rows = {r["method"]: r for r in results(tmp_path / "e")["runs"]}
    frozen, hyper = rows["frozen"]["dyn_mse_by_regime"], rows["hypercrl"]["dyn_mse_by_regime"]
    # from the first step: learning `reversed` online from the nominal embedding costs far more over its 80 steps
    assert hyper["reversed"] < 0.02 * frozen["reversed"], (frozen, hyper)
    code, out, err = evaluate([f"data={log}", f"model={regimes['model']}", "methods=[hypercrl]", "boundaries=none",
                               f"hydra.run.dir={tmp_path / 'n'}"], capsys)
    assert code == 0, err
    unlabelled = results(tmp_path / "n")["runs"][0]["dyn_mse_by_regime"]
    print("robocl-eval by regime: frozen", frozen, "hypercrl", hyper)
    print("robocl-eval hypercrl boundaries=none (online on the nominal embedding):", unlabelled)
    assert unlabelled["reversed"] > 5 * hyper["reversed"], (unlabelled, hyper)
    # back on the trained nominal embedding (not trained on the reversed transitions of the online window)
    assert hyper["nominal"] < 2 * frozen["nominal"] + 0.01, (frozen, hyper)
    # the new label gets its own embedding and learns it online: better than the nominal model there
    assert hyper["half"] < frozen["half"], (frozen, hyper)


def test_hypernet_training_errors_are_one_line_exit_2(regimes, tmp_path, capsys):
    def one_line(code, err, needle):
        assert code == 2, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert needle in err, err

    code, _, err = train([f"data={regimes['rec']}", "train.max_tasks=1", f"hydra.run.dir={tmp_path / 'a'}"], capsys)
    one_line(code, err, "2 regime labels (nominal, reversed), more than train.max_tasks=1")
    code, _, err = train([f"data={regimes['rec']}", "train.nominal_label=''", f"hydra.run.dir={tmp_path / 'b'}"],
                         capsys)
    one_line(code, err, "train.nominal_label=''")
    # a label held out entirely in validation: its embedding could never be trained
    only = tmp_path / "only"
    only.mkdir()
    write_csv(only / "a.csv", [("nominal", 100)], seed=1)
    write_csv(only / "b.csv", [("slippery", 100)], seed=2)
    code, _, err = train([f"data={only}", f"hydra.run.dir={tmp_path / 'c'}"], capsys)
    one_line(code, err, "'slippery' occur only in the validation data")


def test_hypernet_without_labels_is_one_nominal_task(tmp_path, capsys):
    log = tmp_path / "plain.csv"
    write_csv(log, [(None, 150)], seed=3)
    code, out, err = train([f"data={log}", "train.max_epochs=3", f"hydra.run.dir={tmp_path / 't'}"], capsys)
    assert code == 0, err
    doc = results(tmp_path / "t")
    assert list(doc["tasks"]) == ["nominal"] and doc["tasks"]["nominal"]["train_transitions"] == 120
    assert doc["summary"]["model"]["val_dyn_mse"] == pytest.approx(doc["summary"]["model"]["nominal_val_dyn_mse"])

