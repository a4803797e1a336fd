"""Factories only load (issue 31): building an object from a config never simulates or trains.

`refiner=afm`'s factory takes the network it is given or the cached one; with none cached it is one usage
error naming the command that trains it, before any simulation. The commands train it in their cache-filling
step (`robocl.build.refiners.ensure_refiner`), once, before they build: robocl-run's runners, robocl-eval and
the ROS node's set-up. (tests/test_architecture.py checks the same rule on the source, for every factory.)
"""

from __future__ import annotations

import json
import time

import gymnasium as gym
import numpy as np
import pytest
import robocl_envs  # noqa: F401
import torch
from conftest import SMALL_UGV, cli
from omegaconf import OmegaConf

from robocl.build.controller import make_controller
from robocl.build.factory import build
from robocl.build.methods import parse_method
from robocl.build.models import make_model
from robocl.build.refiners import ensure_refiner
from robocl.cli.app import compose
from robocl.errors import UsageError
from robocl.planning.costs import WaypointCost
from robocl.refiners.afm import AFMRefiner

TINY_AFM = ["refiner.data.regimes=20", "refiner.data.steps=10", "refiner.train.epochs=1", "refiner.hidden=32",
            "refiner.embed=16"]


def no_training(monkeypatch) -> None:
    """From here on, simulating AFM regimes, training a flow or pretraining a model fails the test."""
    import robocl.build.pretrained as pretrained
    import robocl.refiners.afm_train as afm_train

    def fail(*args, **kwargs):
        raise AssertionError("building an object simulated or trained")

    for module, name in ((afm_train, "make_data"), (afm_train, "train_net"), (pretrained, "collect_exploration")):
        monkeypatch.setattr(module, name, fail)


def small_cfg(tmp_path):
    cfg, _ = compose(["experiment=ugv_afm", "dynamics.ensemble_size=2", "dynamics.hidden_size=32",
                      f"runtime.cache_dir={tmp_path}", *TINY_AFM])
    torch.manual_seed(0)
    return cfg, make_model(cfg)


def test_an_afm_controller_with_no_cached_refiner_is_a_usage_error_not_a_training_job(tmp_path, monkeypatch):
    cfg, model = small_cfg(tmp_path)
    no_training(monkeypatch)
    t0 = time.perf_counter()
    with pytest.raises(UsageError) as exc:
        make_controller(cfg, parse_method("mppi_afm"), model, WaypointCost(), 0)
    with pytest.raises(UsageError):
        build(cfg.refiner, "refiner", robot=cfg.robot, model=model)
    assert time.perf_counter() - t0 < 30
    text = str(exc.value)
    assert "\n" not in text and "no trained refiner for robot ugv's nominal model" in text, text
    assert str(tmp_path) in text and "python -m robocl.cli.afm_train" in text, text
    assert list(tmp_path.iterdir()) == []  # nothing simulated, trained or cached


def test_the_cache_filling_step_trains_and_the_factory_loads(tmp_path, monkeypatch):
    cfg, model = small_cfg(tmp_path)
    assert ensure_refiner(OmegaConf.create({"kind": "identity"}), cfg.robot, model) is None
    logs: list[str] = []
    trained = ensure_refiner(cfg.refiner, cfg.robot, model, log=logs.append)
    assert trained.path.exists() and trained.path.parent == tmp_path
    assert any(line.startswith("afm: simulating") for line in logs), logs
    record = trained.record()
    assert record["checkpoint"] == str(trained.path) and record["samples"] == 20 * 10 and "history" not in record
    no_training(monkeypatch)
    for net in (None, trained.net):  # from the cache, and handed in as the runners do
        controller = make_controller(cfg, parse_method("mppi_afm"), model, WaypointCost(), 0, refiner_net=net)
        assert isinstance(controller.refiner, AFMRefiner)
        for a, b in zip(controller.refiner.net.state_dict().values(), trained.net.state_dict().values()):
            assert torch.equal(a, b)
    again = ensure_refiner(cfg.refiner, cfg.robot, model, log=lambda *_: pytest.fail("trained again"))
    assert again.path == trained.path


def _drive(path, seed: int, steps: int = 60) -> None:
    """A real UGV log as CSV (the robot's state and command columns)."""
    env = gym.make("robocl/UGV-v0").unwrapped
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    rows = ["t,x,y,yaw,v_forward,v_lateral,yaw_rate,v_cmd,w_cmd"]
    for i in range(steps):
        action = np.array([rng.uniform(0.2, 1.0), rng.uniform(-1.0, 1.0)])
        rows.append(",".join(f"{v:.6g}" for v in (0.2 * i, *obs, *action)))
        obs, *_ = env.step(action.astype(np.float32))
    path.write_text("\n".join(rows) + "\n")


def test_robocl_eval_trains_the_refiner_once_before_the_episodes(tmp_path, capsys):
    from robocl.cli.eval import main

    data = tmp_path / "logs"
    data.mkdir()
    for seed in (1, 2):
        _drive(data / f"drive{seed}.csv", seed)
    args = [*SMALL_UGV, f"data={data}", "methods=[frozen,afm]", "refiner=afm", *TINY_AFM,
            f"refiner.cache_dir={tmp_path / 'afm'}"]
    code, _, err = cli(main, [*args, f"hydra.run.dir={tmp_path / 'e1'}"], capsys)
    assert code == 0, err
    assert err.count("afm: simulating") == 1, err  # two episodes, one training, before either
    doc = json.loads((tmp_path / "e1" / "results.json").read_text())
    assert doc["afm_train"]["checkpoint"].startswith(str(tmp_path / "afm"))
    assert len(doc["episodes"]) == 2 and doc["summary"]["afm"]["action_mse"] is not None
    code, _, err = cli(main, [*args, f"hydra.run.dir={tmp_path / 'e2'}"], capsys)
    assert code == 0 and "afm: simulating" not in err, err


def test_the_ros_node_fills_its_caches_before_it_builds(tmp_path, monkeypatch):
    from robocl_ros.node import binding_for, build_controller, nominal_models, resolve

    cfg, _ = compose(["experiment=ros_ugv", "ros.method=mppi_afm", *SMALL_UGV])
    with pytest.raises(UsageError, match="ros.method with _afm need refiner=afm"):
        resolve(cfg)
    cfg, _ = compose(["experiment=ros_ugv", "ros.method=mppi_afm", "refiner=afm", *SMALL_UGV, *TINY_AFM,
                      f"refiner.cache_dir={tmp_path / 'afm'}", f"ros.checkpoint.path={tmp_path / 'node.pt'}"])
    resolve(cfg)
    base, state, net = nominal_models(cfg)  # the nominal model (cached) and the refiner, trained now
    assert state is None and net is not None and len(list((tmp_path / "afm").iterdir())) == 1
    no_training(monkeypatch)
    controller, _, loaded = build_controller(cfg, binding_for(cfg), base, state, net)
    assert isinstance(controller.refiner, AFMRefiner) and not loaded
