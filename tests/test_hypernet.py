"""The hypernetwork dynamics model: generated weights, the per-task cache, planning cost, training."""

from __future__ import annotations

import statistics
import time

import pytest
import torch

from robocl.dynamics.baselines import ConstantVelocityModel
from robocl.dynamics.hypernet import HyperNetwork
from robocl.dynamics.mlp import GaussianMLP
from robocl.dynamics.training import one_step_mse, train_offline
from robocl.planning.costs import WaypointCost
from robocl.planning.mppi import MPPI
from robocl.robots.codec import PlanarBodyCodec

CODEC = PlanarBodyCodec()


def small_hnet(**kw) -> HyperNetwork:
    return HyperNetwork(CODEC, hidden_size=32, hidden_layers=2, chunk_size=500, hnet_hidden=(32,), seed=0, **kw)


def test_generates_every_target_weight_in_chunks():
    h = small_hnet()
    n = h.spec.numel
    assert h.num_chunks == -(-n // 500) and h.num_chunks * 500 >= n
    weights = h.weights(0)
    assert [tuple(w.shape) for w in weights] == h.spec.shapes
    assert sum(w.numel() for w in weights) == n
    # every layer starts near its usual init scale (std ~ 1/sqrt(3 fan_in)), not 0 or 1
    w0 = weights[0]
    assert 0.3 < float(w0.std()) * (3 * w0.shape[0]) ** 0.5 < 3.0


def test_cache_is_reused_and_invalidated_by_parameter_updates():
    h = small_hnet()
    s, a = torch.randn(64, 6), torch.randn(64, 2)
    with torch.inference_mode():
        first = h.weights()
        out1 = h.step(s, a)
        assert h.weights() is first  # no regeneration between planner calls
    opt = torch.optim.SGD(h.parameters(), lr=0.1)
    h.predict_targets(torch.randn(8, 5))[0].pow(2).mean().backward()
    opt.step()  # an in-place update: no one tells the model, the version counters do
    with torch.inference_mode():
        second = h.weights()
        out2 = h.step(s, a)
    assert second is not first
    assert not torch.allclose(out1, out2)
    # load_state_dict copies into the parameters: the cache must follow
    fresh = small_hnet()
    with torch.inference_mode():
        stale = fresh.weights()
    fresh.load_state_dict(h.state_dict())
    with torch.inference_mode():
        assert fresh.weights() is not stale
        assert torch.allclose(fresh.step(s, a), out2)


def test_each_task_has_its_own_cached_weights():
    h = small_hnet()
    h.set_task(2)
    assert h.num_tasks == 3 and h.current_task == 2
    with torch.inference_mode():
        w2 = h.weights()
        w0 = h.weights(0)
        assert w2 is h.weights(2) and w0 is h.weights(0)
    assert not torch.allclose(w0[0], w2[0])


def test_hypernet_step_equals_a_plain_mlp_with_the_generated_weights():
    h = small_hnet()
    mlp = GaussianMLP(CODEC, hidden_size=32, hidden_layers=2)
    with torch.no_grad():
        for p, w in zip(mlp.weights, h.generate(0)):
            p.copy_(w)
        mlp.input_norm.load_state_dict(h.input_norm.state_dict())
        mlp.target_norm.load_state_dict(h.target_norm.state_dict())
    s, a = torch.randn(100, 6), torch.randn(100, 2)
    with torch.inference_mode():
        assert torch.allclose(h.step(s, a), mlp.step(s, a), atol=1e-6)
        assert torch.allclose(h.predict(s, a)[0], mlp.predict(s, a)[0], atol=1e-6)


def test_memory_grows_only_by_embeddings():
    h = small_hnet()
    base = sum(p.numel() for p in h.parameters())
    for _ in range(4):
        h.add_task()
    assert sum(p.numel() for p in h.parameters()) - base == 4 * h.embedding_dim


def test_planning_with_cached_weights_costs_about_a_plain_mlp():
    """Same target size (3x200), same MPPI budget (1000 x 5), calls interleaved."""
    torch.set_num_threads(1)
    h = HyperNetwork(CODEC, seed=0).eval()
    mlp = GaussianMLP(CODEC).eval()
    cost = WaypointCost()
    cost.set_goal(torch.tensor([3.0, 1.0]))

    def planner(model):
        return MPPI(model.step, cost, action_low=[-1, -1.57], action_high=[1, 1.57], horizon=5, population=1000,
                    noise_sigma=[0.5, 0.8], temperature=0.3)

    planners = {"h": planner(h), "m": planner(mlp)}
    times: dict[str, list[float]] = {"h": [], "m": []}
    s = torch.zeros(6)
    for i in range(45):
        for k in ("h", "m") if i % 2 else ("m", "h"):
            t0 = time.perf_counter()
            planners[k].plan(s)
            if i >= 5:
                times[k].append(time.perf_counter() - t0)
    ratio = statistics.median(times["h"]) / statistics.median(times["m"])
    assert ratio < 1.25, ratio  # the acceptance figure (<= 1.1) is measured by robocl-run experiment=cl_ugv


def test_trains_on_ugv_data_and_beats_constant_velocity(ugv_data):
    train, test = ugv_data
    h = HyperNetwork(CODEC, hidden_size=64, hidden_layers=2, chunk_size=2000, hnet_hidden=(64,), seed=0)
    train_offline(h, train, epochs=15, batch_size=128, seed=0)
    with torch.inference_mode():
        mse = float(one_step_mse(h, test))
        cv = ConstantVelocityModel(CODEC, dt=0.2)
        cv.target_norm.load_state_dict(h.target_norm.state_dict())
        base = float(one_step_mse(cv, test))
    assert mse < 0.3 * base, (mse, base)


def test_ugv_continual_runs_with_the_hypernet_and_hypercrl_online(tmp_path, capsys):
    """`dynamics=hypernet continual=hypercrl` plugs into the main job (pretraining + mppi_online)."""
    from robocl.cli.app import run_app
    from robocl.cli.run import run_experiment, validate_experiment

    def run(*args: str) -> int:
        return run_app("robocl-run", "", run_experiment, argv=list(args), validate=validate_experiment)

    course = tmp_path / "c.csv"
    course.write_text("x,y\n2.0,0.0\n4.0,1.0\n")
    common = ["methods=[mppi_online]", "seeds=[0]", f"task.map={course}", "budget.max_steps=15",
              "dynamics.pretrain.episodes=3", "dynamics.pretrain.steps=60", "dynamics.pretrain.epochs=3",
              "planner.population=100", "runtime.progress=false", "runtime.threads=1"]
    code = run("dynamics=hypernet", "continual=hypercrl", "dynamics.target.hidden_size=32", *common,
               f"hydra.run.dir={tmp_path / 'run'}")
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "| mppi_online |" in out.out
    code = run("continual=hypercrl", "dynamics.ensemble_size=1", "dynamics.hidden_size=16", *common,
               f"hydra.run.dir={tmp_path / 'bad'}")
    assert code == 2 and "dynamics=hypernet" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [dict(chunk_size=0), dict(embedding_dim=0), dict(hidden_layers=0)])
def test_bad_sizes_are_refused(bad):
    with pytest.raises(ValueError):
        HyperNetwork(CODEC, **bad)
