"""robocl-train end to end on real recorded data: a MuJoCo UGV whose physics differ from robocl's
nominal (bigger wheels, payload, low friction) stands in for a user's robot. Its drives are recorded
as ROS 2 bags by `robocl-run record=`, robocl-train fits a model, and `model=PATH` runs it in
robocl-eval and robocl-run. Every bad model/robot file is one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import FOREIGN, cli, one_line_exit_2
from conftest import SMALL_UGV as SMALL

from robocl.dynamics.artifact import VERSION, read_model
from robocl.eval.results import validate_results


def run(args, capsys):
    from robocl.cli.run import main

    return cli(main, [*SMALL, *args], capsys)


def train(args, capsys):
    from robocl.cli.train import main

    return cli(main, [*SMALL, *args], capsys)


def evaluate(args, capsys):
    from robocl.cli.eval import main

    return cli(main, [*SMALL, *args], capsys)


def results(run_dir: Path) -> dict:
    doc = json.loads((run_dir / "results.json").read_text())
    validate_results(doc)  # robocl.results/1: plain numbers in summary, ids in every run
    return doc


def test_train_fits_a_better_model_than_the_simulator_and_writes_its_run_directory(foreign):
    run_dir = foreign["run"]
    doc = results(run_dir)
    assert doc["command"] == "train"
    m = doc["summary"]["model"]
    print("robocl-train on the foreign UGV:", {k: m[k] for k in ("train_transitions", "val_transitions",
                                                                  "val_dyn_mse", "sim_val_dyn_mse", "epochs")})
    assert m["val_episodes"] == 1 and m["train_episodes"] == 2  # held out by episode
    assert m["train_transitions"] > 150 and m["val_transitions"] > 50
    # the simulator model's bigger-wheel, low-friction mismatch: learning from the robot's own data pays
    assert m["val_dyn_mse"] * 3 < m["sim_val_dyn_mse"], m
    assert m["val_kstep_mse"] > m["val_dyn_mse"]
    assert 1 <= m["best_epoch"] <= m["epochs"] <= 60
    for name in ("model.pt", "training.png", "errors.png"):
        assert (run_dir / name).stat().st_size > 10_000, name
    assert "simulator-pretrained model on the same data" in (run_dir / "summary.md").read_text()
    assert foreign["root"].joinpath("mybot.pt").read_bytes() == foreign["model"].read_bytes()  # train.out copy


def test_model_artifact_describes_itself(foreign):
    payload = read_model(foreign["model"])
    assert payload["version"] == VERSION and payload["robocl"]
    robot = payload["robot"]
    assert robot["codec"] == "planar" and robot["dt"] == 0.2 and robot["state"][2] == "yaw"
    assert robot["action_low"] == [-1.0, -1.5707963]
    assert payload["dynamics"]["kind"] == "ensemble" and payload["dynamics"]["ensemble_size"] == 3
    assert len(payload["data"]["fingerprint"]) == 16 and payload["data"]["transitions"] > 200
    assert payload["metrics"]["val_dyn_mse"] == results(foreign["run"])["summary"]["model"]["val_dyn_mse"]
    # the normalization statistics travel with the weights
    assert "input_norm.std" in payload["state_dict"] and "target_norm.mean" in payload["state_dict"]


def test_model_path_in_eval_reproduces_the_validation_error_and_beats_the_simulator(foreign, tmp_path, capsys):
    """robocl-eval model=PATH: `frozen` on the validation episode is exactly robocl-train's val_dyn_mse
    (one code path), and on another seed's drive the trained model beats the simulator model."""
    m = results(foreign["run"])["summary"]["model"]
    val = results(foreign["run"])["validation"].split("(")[1].rstrip(")")
    code, _, err = evaluate([f"data={foreign['root'] / 'rec' / val}", f"model={foreign['model']}",
                             "methods=[frozen,sim]", f"hydra.run.dir={tmp_path / 'e'}"], capsys)
    assert code == 0, err
    summary = results(tmp_path / "e")["summary"]
    assert summary["frozen"]["dyn_mse"] == pytest.approx(m["val_dyn_mse"], rel=1e-4)
    assert summary["sim"]["dyn_mse"] == pytest.approx(m["sim_val_dyn_mse"], rel=1e-4)  # one scale, one sim model
    code, _, err = evaluate([f"data={foreign['heldout']}", f"model={foreign['model']}", "methods=[frozen,sim,online]",
                             f"hydra.run.dir={tmp_path / 'h'}"], capsys)
    assert code == 0, err
    doc = results(tmp_path / "h")
    assert doc["pretrain"]["model_fingerprint"]
    assert doc["summary"]["frozen"]["dyn_mse"] * 3 < doc["summary"]["sim"]["dyn_mse"], doc["summary"]


def test_model_path_in_run_plans_on_the_trained_model(foreign, tmp_path, capsys):
    code, _, err = run([*FOREIGN, f"task.map={foreign['course']}", "methods=[mppi]", "seeds=[3]",
                        "budget.max_steps=200", "planner.population=200", f"model={foreign['model']}",
                        f"hydra.run.dir={tmp_path / 'p'}"], capsys)
    assert code == 0, err
    doc = results(tmp_path / "p")
    assert doc["pretrain"]["model"] == str(foreign["model"])
    assert doc["summary"]["mppi"]["success_rate"] >= 0.8


def test_user_robot_file_trains_without_a_simulator(foreign, tmp_path, capsys):
    """robot=PATH.yaml (the shipped template, renamed and re-bounded): robocl-train works, robocl-run says
    in one line that the robot has no simulator."""
    spec = tmp_path / "mybot.yaml"
    text = (Path(__file__).parents[1] / "configs" / "robot" / "diff_drive.yaml").read_text()
    spec.write_text(text.replace("name: diff_drive", "name: mybot").replace("[-0.8, -1.2]", "[-1.0, -1.5707963]")
                    .replace("[0.8, 1.2]", "[1.0, 1.5707963]"))
    code, out, err = train([f"robot={spec}", f"data={foreign['root'] / 'rec'}", "train.max_epochs=3",
                            f"hydra.run.dir={tmp_path / 't'}"], capsys)
    assert code == 0, err
    doc = results(tmp_path / "t")
    assert doc["summary"]["model"]["sim_val_dyn_mse"] is None and any("no simulator" in n for n in doc["notes"])
    assert read_model(tmp_path / "t" / "model.pt")["robot"]["name"] == "mybot"
    code, _, err = run([f"robot={spec}", f"model={tmp_path / 't' / 'model.pt'}"], capsys)
    assert code == 2 and "has no simulator" in err and len(err.strip().splitlines()) == 1


def test_bad_model_files_are_one_line_exit_2(foreign, tmp_path, capsys):
    data = f"data={foreign['heldout']}"
    evaluate = lambda args, capsys: globals()["evaluate"]([*args, f"hydra.run.dir={tmp_path / 'e'}"], capsys)  # noqa
    code, _, err = evaluate([data, f"model={tmp_path / 'missing.pt'}"], capsys)
    one_line_exit_2(code, err, "no such model file")
    junk = tmp_path / "junk.pt"
    junk.write_text("not a model")
    code, _, err = evaluate([data, f"model={junk}"], capsys)
    one_line_exit_2(code, err, "not a readable robocl model file")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(foreign["model"].read_bytes()[:5000])
    code, _, err = evaluate([data, f"model={truncated}"], capsys)
    one_line_exit_2(code, err, "damaged or truncated")
    payload = torch.load(foreign["model"], weights_only=True)
    other = tmp_path / "plain.pt"
    torch.save({"model": payload["state_dict"]}, other)
    code, _, err = evaluate([data, f"model={other}"], capsys)
    one_line_exit_2(code, err, "not a robocl model artifact")
    newer = tmp_path / "newer.pt"
    torch.save({**payload, "version": VERSION + 1}, newer)
    code, _, err = evaluate([data, f"model={newer}"], capsys)
    one_line_exit_2(code, err, "newer than this robocl reads")
    # a model for another robot or control period
    code, _, err = run(["experiment=quad_continual", f"model={foreign['model']}"], capsys)
    one_line_exit_2(code, err, "trained for robot 'ugv'", "codec")
    code, _, err = evaluate([data, f"model={foreign['model']}", "data.period=0.1"], capsys)
    one_line_exit_2(code, err, "control period 0.2")
    code, _, err = evaluate([data, f"model={foreign['model']}", "robot.action_high=[2.0,1.5707963]"], capsys)
    one_line_exit_2(code, err, "action_high")


@pytest.mark.parametrize("robot, needle", [
    ("codec: wheel\n", "robot.codec=wheel: accepted planar, quadrotor, vector"),
    ("codec: planar\nname: r\ndt: 0\naction_low: [-1, -1]\naction_high: [1, 1]\nsafe_action: [0, 0]\n", "robot.dt=0"),
    ("codec: planar\nname: r\ndt: 0.1\naction_low: [-1]\naction_high: [1, 1]\nsafe_action: [0, 0]\n",
     "robot.action_low=[-1]: expected 2 finite numbers"),
    ("codec: planar\nname: r\ndt: 0.1\naction_low: [-1, -1]\naction_high: [1, 1]\nsafe_action: [0, 3]\n",
     "outside the action bounds"),
    ("codec: planar\nname: r\ndt: 0.1\nstate: [a, b, c]\naction_low: [-1, -1]\naction_high: [1, 1]\n"
     "safe_action: [0, 0]\n", "codec planar takes 6 state and 2 command entries"),
    ("codec: vector\nname: r\ndt: 0.1\nstate: [a, b]\ncommand: [u]\nangles: [c]\naction_low: [-1]\naction_high: [1]\n"
     "safe_action: [0]\n", "robot.angles: c not in robot.state"),
    ("- just\n- a list\n", "expected a mapping"),
])
def test_bad_robot_files_are_one_line_exit_2(tmp_path, capsys, robot, needle):
    path = tmp_path / "robot.yaml"
    path.write_text(robot)
    code, _, err = train([f"robot={path}", f"data={tmp_path}"], capsys)
    one_line_exit_2(code, err, needle)


def test_too_little_data_is_one_line(tmp_path, capsys):
    log = tmp_path / "short.csv"
    log.write_text("t,x,y,yaw,v_forward,v_lateral,yaw_rate,v_cmd,w_cmd\n" +
                   "".join(f"{0.2 * i:.1f},{0.1 * i},0,0,0.5,0,0,0.5,0\n" for i in range(10)))
    code, _, err = train([f"data={log}", f"hydra.run.dir={tmp_path / 'r'}"], capsys)
    one_line_exit_2(code, err, "only 9 usable transitions")


def test_afm_refiner_for_a_robot_known_only_by_its_learned_model(foreign, tmp_path, capsys):
    """robocl-train refiner=afm: AFM's regimes are simulated in the learned model (no simulator of this robot
    is used), the refiner is cached against that model, and `model=PATH` methods find it without training."""
    from robocl.refiners.model_env import LearnedModelEnv

    model_path = foreign["model"]
    tiny = ["refiner=afm", "refiner.data.regimes=40", "refiner.data.steps=20", "refiner.train.epochs=2"]
    code, _, err = train([f"data={foreign['root'] / 'rec'}", "train.max_epochs=5", *tiny,
                          f"hydra.run.dir={tmp_path / 't'}"], capsys)
    assert code == 0, err
    doc = results(tmp_path / "t")
    afm = doc["afm_train"]
    assert Path(afm["checkpoint"]).exists() and afm["samples"] == 40 * 20
    code, out, err = evaluate([f"data={foreign['heldout']}", f"model={tmp_path / 't' / 'model.pt'}", *tiny,
                               "methods=[frozen,afm]", f"hydra.run.dir={tmp_path / 'e'}"], capsys)
    assert code == 0, err
    assert "afm: simulating" not in err  # found in the cache, not trained again
    assert results(tmp_path / "e")["summary"]["afm"]["action_mse"] is not None
    # the learned-model simulator applies a regime's gains to the command, as the MuJoCo envs do
    from robocl.build.models import model_from_artifact
    from robocl.cli.app import compose

    cfg, _ = compose([f"model={model_path}", *SMALL])
    model, _ = model_from_artifact(cfg, log=lambda *_: None)
    env = LearnedModelEnv(model, "planar", [-1.0, -1.5707963], [1.0, 1.5707963], noise=False)
    env.reset(seed=0)
    forward = [env.step([0.8, 0.0])[0] for _ in range(10)][-1]
    env.reset(seed=0)
    env.set_gains((-1.0, 1.0))
    backward = [env.step([0.8, 0.0])[0] for _ in range(10)][-1]
    assert forward[0] > 0.5 and backward[0] < -0.5, (forward, backward)


def test_model_path_in_bench_times_the_trained_model(foreign, tmp_path, capsys):
    from robocl.cli.bench import main

    code, out, err = cli(main, ["suite=planner", f"model={foreign['model']}", "bench.repeats=3", "bench.warmup=1",
                                "planner.population=100", "runtime.progress=false", "runtime.threads=1",
                                f"hydra.run.dir={tmp_path / 'b'}"], capsys)
    assert code == 0, err
    assert results(tmp_path / "b")["config"]["dynamics"]["ensemble_size"] == 3  # the artifact's settings
    code, _, err = cli(main, ["suite=planner", f"model={tmp_path / 'none.pt'}", f"hydra.run.dir={tmp_path / 'n'}"],
                       capsys)
    one_line_exit_2(code, err, "no such model file")
    assert not (tmp_path / "n").exists()


def test_init_from_the_simulator_model_fine_tunes_it(foreign, tmp_path, capsys):
    """train.init=sim starts from the simulator-pretrained model (same normalization) and fine-tunes it on the
    robot's data: it ends below the model it started from on the validation drive (measured on the same scale:
    the simulator model's normalization, which fine-tuning keeps)."""
    code, _, err = train([f"data={foreign['root'] / 'rec'}", "train.init=sim", "train.max_epochs=40",
                          f"hydra.run.dir={tmp_path / 't'}"], capsys)
    assert code == 0, err
    m = results(tmp_path / "t")["summary"]["model"]
    assert m["init_from_sim"] == 1 and m["val_dyn_mse"] < 0.8 * m["sim_val_dyn_mse"], m
    code, _, err = train([f"data={foreign['root'] / 'rec'}", "train.init=warm"], capsys)
    one_line_exit_2(code, err, "train.init=warm: accepted scratch, sim")
    spec = tmp_path / "nosim.yaml"
    spec.write_text((Path(__file__).parents[1] / "configs" / "robot" / "diff_drive.yaml").read_text())
    code, _, err = train([f"robot={spec}", f"data={foreign['root'] / 'rec'}", "train.init=sim"], capsys)
    one_line_exit_2(code, err, "has no simulator to start from")
