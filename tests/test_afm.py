"""AFM refiner: the flow learns known planned->intended maps, in context; regime-switch logic."""

from __future__ import annotations

import math

import gymnasium as gym
import pytest
import robocl_envs  # noqa: F401
import torch
from omegaconf import OmegaConf

from robocl.build.models import make_model
from robocl.cli.app import compose
from robocl.dynamics.training import train_offline
from robocl.refiners.afm import SOLVERS, AFMFlow, AFMNet, AFMRefiner, AFMShape
from robocl.refiners.afm_data import AFMData
from robocl.refiners.afm_train import ensure_checkpoint, train_net, transport_error

LOW = torch.tensor([-1.0, -math.pi / 2])
HIGH = -LOW
TRAIN = OmegaConf.create({"epochs": 25, "batch_size": 256, "lr": 3e-3, "val_fraction": 0.2, "seed": 0})


def synthetic(gains: list[list[float]], per_regime: int = 200, seed: int = 0) -> AFMData:
    """Regimes with known gains: intended = clip(planned / gain); each context row carries the
    regime's signature (executed action and the state error a gain would cause), as in the real data."""
    g = torch.Generator().manual_seed(seed)
    n_reg = len(gains)
    gains_t = torch.tensor(gains, dtype=torch.float32)
    regime = torch.arange(n_reg).repeat_interleave(per_regime)
    n = regime.numel()
    planned = LOW + (HIGH - LOW) * torch.rand(n, 2, generator=g)
    intended = torch.max(torch.min(planned / gains_t[regime], HIGH), LOW)
    features = torch.randn(n, 3, generator=g)
    executed = LOW + (HIGH - LOW) * torch.rand(n, 2, generator=g)
    err = torch.zeros(n, 6)
    err[:, 3] = (gains_t[regime, 0] - 1) * executed[:, 0]  # forward-speed miss
    err[:, 5] = (gains_t[regime, 1] - 1) * executed[:, 1]  # yaw-rate miss
    rows = torch.cat([features, executed, err], dim=-1)
    lengths = torch.full((n_reg,), per_regime)
    return AFMData(features, planned, intended, rows, torch.zeros(n), torch.ones(n, dtype=torch.bool), regime,
                   torch.cumsum(lengths, 0) - lengths, lengths, gains_t, torch.zeros(n_reg, dtype=torch.bool))


def fitted_net(data: AFMData, context: int = 4) -> AFMNet:
    net = AFMNet(AFMShape(3, 2, 6, context_size=context, hidden=64, embed=32))
    net.set_normalization(data.features.mean(0), data.features.std(0), LOW, HIGH, torch.ones(6))
    train_net(net, data, TRAIN)
    return net


def test_flow_transports_constant_gain():
    """One fixed gain (-1, 0.5): v flips, w saturates for half the box. Short training suffices."""
    data = synthetic([[-1.0, 0.5]] * 10)
    net = fitted_net(data)
    idx = torch.arange(len(data))
    for solver in SOLVERS:
        err, identity = transport_error(net, data, idx, solver=solver)
        assert identity > 0.5
        assert err < 0.1 and err < 0.15 * identity, (solver, err, identity)


def test_flow_infers_the_regime_from_context():
    """Two regimes that need opposite corrections; only the context tells them apart."""
    data = synthetic([[-1.0, 1.0], [1.0, -2.0]] * 8)
    net = fitted_net(data)
    err, identity = transport_error(net, data, torch.arange(len(data)))
    assert identity > 0.3 and err < 0.08, (err, identity)
    # the same planned action and state, two contexts -> the two regimes' intended actions
    planned = torch.tensor([[0.6, 0.4], [0.6, 0.4]])
    rows, mask = data.sample_context(torch.tensor([0, 200]), 4, torch.Generator().manual_seed(0), min_size=4)
    out = AFMFlow(net).transport(torch.zeros(2, 3), rows, mask, planned).detach()
    assert torch.allclose(out[0], torch.tensor([-0.6, 0.4]), atol=0.12), out
    assert torch.allclose(out[1], torch.tensor([0.6, -0.2]), atol=0.12), out


def test_flow_is_batched_and_solver_steps_matter():
    data = synthetic([[2.0, -1.0]] * 4, per_regime=100)
    net = fitted_net(data, context=2)
    idx = torch.arange(64)
    rows, mask = data.sample_context(idx, 2)
    with torch.inference_mode():
        batch = AFMFlow(net, "midpoint", 10).transport(data.features[idx], rows, mask, data.planned[idx])
        single = torch.cat([AFMFlow(net, "midpoint", 10).transport(data.features[i:i + 1], rows[i:i + 1],
                                                                    mask[i:i + 1], data.planned[i:i + 1])
                            for i in range(3)])
    assert batch.shape == (64, 2)
    assert torch.allclose(batch[:3], single, atol=1e-5)
    with pytest.raises(ValueError):
        AFMFlow(net, "dopri5")


@pytest.fixture(scope="module")
def small_setup(tmp_path_factory):
    """A small nominal ensemble and a small AFM trained through the real pipeline (cached checkpoint)."""
    torch.set_num_threads(1)
    cache = tmp_path_factory.mktemp("afm-cache")
    cfg, _ = compose(["experiment=ugv_afm", "dynamics.ensemble_size=2", "dynamics.hidden_size=64",
                      f"runtime.cache_dir={cache}", "refiner.data.regimes=60", "refiner.data.steps=30",
                      "refiner.train.epochs=4", "refiner.hidden=64", "refiner.embed=32"])
    from robocl.sim.data import collect_exploration

    env = gym.make("robocl/UGV-v0").unwrapped
    model = make_model(cfg)
    train_offline(model, collect_exploration(env, episodes=8, steps=120, seed=0), epochs=25, seed=0)
    net, info, path = ensure_checkpoint(cfg.refiner, cfg.robot, model, log=lambda *a: None)
    return cfg, model, net, info, path


def test_checkpoint_is_cached_and_reused(small_setup):
    cfg, model, net, info, path = small_setup
    assert path.exists() and path.parent == __import__("pathlib").Path(cfg.runtime.cache_dir)
    assert info["samples"] > 1000 and info["val_transport_mae"] is not None
    again, _, path2 = ensure_checkpoint(cfg.refiner, cfg.robot, model, log=lambda *a: pytest.fail("retrained"))
    assert path2 == path
    for a, b in zip(net.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


def test_raw_action_executed_exactly_once_per_detected_switch(small_setup):
    """Drive the real UGV with a fixed plan while the actuation flips; after every detected switch
    the refiner returns the raw planned action exactly once, then refines again."""
    cfg, model, net, _, _ = small_setup
    refiner = AFMRefiner(net, model, model.codec, LOW, HIGH, threshold=1.0, cooldown=3)
    env = gym.make("robocl/UGV-v0").unwrapped
    obs, _ = env.reset(seed=0)
    regime_changes = {0: (1.0, 1.0), 25: (-1.0, 1.0), 50: (1.0, 1.0), 75: (-1.0, -1.0)}
    raw_steps, switch_steps, errors, was_raw = [], [], [], []
    for step in range(100):
        if step in regime_changes:
            env.set_gains(regime_changes[step])
        s = torch.as_tensor(obs, dtype=torch.float32)
        planned = torch.tensor([0.7, 0.3 * math.sin(step / 7.0)])
        action = refiner.refine(s, planned)
        was_raw.append(refiner.last_was_raw)
        if refiner.last_was_raw:
            raw_steps.append(step)
        next_obs, *_ = env.step(action.numpy())
        s2 = torch.as_tensor(next_obs, dtype=torch.float32)
        with torch.no_grad():
            predicted = model.predict(s[None], planned[None])[0][0]
        before = refiner.switches
        refiner.observe(s, planned, action, s2, predicted)
        errors.append(refiner.last_error)
        if refiner.switches > before:
            switch_steps.append(step)
        obs = next_obs
    assert refiner.switches == len(switch_steps) >= 2
    # a switch detected on the last step has no next step to execute the raw action in
    assert refiner.raw_after_switch == len([s for s in switch_steps if s + 1 < 100])
    # the first step (no regime known yet) and the step after each detected switch, nothing else
    assert raw_steps == [0] + [s + 1 for s in switch_steps if s + 1 < 100]
    # a switch needs the error above the threshold and outside the cooldown; and 2x (switch_factor) the miss's
    # own level since the last registration, so while this small flow cannot correct (-1, 1) and its miss hovers
    # at the threshold (steps 27-49), the regime is not declared again and again: one switch per change at most
    since = 0
    for step in range(100):
        since = 0 if was_raw[step] else since + 1
        if step in switch_steps:
            assert errors[step] > 1.0 and since > 3, (step, errors)
            since = 0  # the raw action that follows registers the new regime
    assert len(switch_steps) <= 3, switch_steps
    # each change away from the nominal regime is detected within two steps
    for change in (25, 75):
        assert any(change <= s <= change + 2 for s in switch_steps), (change, switch_steps)
    kinds = [e.kind for e in refiner.events]
    for i, kind in enumerate(kinds):
        if kind == "switch":
            assert kinds[i + 1:i + 3] == ["raw", "register"]


def test_quadrotor_regime_data_labels_intended_actions():
    """The quadrotor generator: gains only on the configured channels, intended = planned / gain
    (inside the box), context rows from the real MuJoCo quad and a (small, untrained) nominal model."""
    from robocl.refiners.afm_data import generate_quadrotor

    cfg, _ = compose(["experiment=quad_afm", "dynamics.ensemble_size=2", "dynamics.hidden_size=32",
                      "refiner.data.regimes=6", "refiner.data.steps=15"])
    model = make_model(cfg)
    env = gym.make("robocl/Quadrotor-v0", control_hz=25).unwrapped
    data = generate_quadrotor(env, model, cfg.refiner.data)
    assert len(data) > 60 and data.rows.shape[1] == model.codec.feature_dim + 4 + model.codec.target_dim
    assert torch.all(data.gains[:, 2:] == 1.0)  # vz and yaw rate keep gain 1
    g = data.gains[data.regime]
    inside = (data.planned / g).abs().le(torch.tensor([1.0, 1.0, 1.0, 1.5])).all(-1)
    assert inside.any()
    torch.testing.assert_close(data.intended[inside], data.planned[inside] / g[inside])


def test_fast_inference_path_matches_the_neural_ode():
    """The hot path steps the NeuralODE's own torchdyn solver: same values as the full odeint call."""
    data = synthetic([[2.0, -1.0], [-1.0, 0.5]] * 2, per_regime=50)
    net = AFMNet(AFMShape(3, 2, 6, context_size=2, hidden=32, embed=16))
    net.set_normalization(data.features.mean(0), data.features.std(0), LOW, HIGH, torch.ones(6))
    idx = torch.arange(16)
    rows, mask = data.sample_context(idx, 2)
    for solver in SOLVERS:
        flow = AFMFlow(net, solver, 10)
        with torch.no_grad():
            full = flow.transport(data.features[idx], rows, mask, data.planned[idx], fast=False)
            fast = flow.transport(data.features[idx], rows, mask, data.planned[idx], fast=True)
        torch.testing.assert_close(fast, full)
        assert not torch.allclose(full, data.planned[idx])  # the flow moved the actions


def test_afm_online_learns_the_refined_robot_and_switches_against_the_frozen_nominal(small_setup):
    """mppi_afm_online: the learner observes (state, planned action, next state), once the refiner has settled on
    the regime, and the refiner keeps a frozen copy of the nominal model: refinement and learning do not
    compensate one regime twice."""
    from robocl.build.controller import make_controller
    from robocl.build.methods import parse_method
    from robocl.planning.costs import WaypointCost

    cfg, model, net, _, _ = small_setup
    cfg = OmegaConf.merge(cfg, {"planner": {"population": 64, "horizon": 5}, "refiner": {"with_learner": "stacked"}})
    cost = WaypointCost()
    cost.set_goal(torch.tensor([2.0, 0.0]))
    both = make_controller(cfg, parse_method("mppi_afm_online"), model, cost, seed=0, refiner_net=net)
    assert both.selector is None  # stacked: the learner plans from the first step
    alone = make_controller(cfg, parse_method("mppi_afm"), model, cost, seed=0, refiner_net=net)
    assert both.learn_planned and not alone.learn_planned
    assert both.refiner.model is not both.model and alone.refiner.model is alone.model
    seen = []
    learn = both.strategy.observe
    both.strategy.observe = lambda t: (seen.append(t), learn(t))  # what the learner is given, step by step
    env = gym.make("robocl/UGV-v0").unwrapped
    env.set_gains((-1.0, 1.0))
    obs, _ = env.reset(seed=0)
    nominal = [p.clone() for p in both.refiner.model.parameters()]
    learner = [p.clone() for p in both.model.parameters()]
    learned, refined = [], []
    for _ in range(40):
        n = len(seen)
        action = both.act(obs)
        planned = both.last_planned.clone()
        refined.append(not torch.allclose(torch.as_tensor(action, dtype=torch.float32), planned, atol=1e-4))
        nxt, *_ = env.step(action.astype("float32"))
        both.observe(obs, action, nxt)
        learned.append(len(seen) > n)
        if learned[-1]:
            assert torch.allclose(seen[-1].actions[0], planned)
        obs = nxt
    assert any(refined)
    # nothing is learned while the refiner registers the regime (its 8-row context filling), then every step
    assert not any(learned[:7]) and sum(learned) >= 20, learned
    assert not all(torch.equal(a, b) for a, b in zip(learner, both.model.parameters()))  # the learner learned
    assert all(torch.equal(a, b) for a, b in zip(nominal, both.refiner.model.parameters()))  # the nominal did not


def test_afm_online_residual_refines_against_the_learner_which_learns_the_robot(small_setup):
    """refiner.with_learner=residual: the refiner's context and switch test are against the learner's current
    model, and the learner learns the executed action (the robot itself) from the first step."""
    from robocl.build.controller import make_controller
    from robocl.build.methods import parse_method
    from robocl.planning.costs import WaypointCost

    cfg, model, net, _, _ = small_setup
    cfg = OmegaConf.merge(cfg, {"planner": {"population": 64, "horizon": 5}, "refiner": {"with_learner": "residual"}})
    cost = WaypointCost()
    cost.set_goal(torch.tensor([2.0, 0.0]))
    both = make_controller(cfg, parse_method("mppi_afm_online"), model, cost, seed=0, refiner_net=net)
    assert not both.learn_planned and both.refiner.model is both.model
    seen = []
    learn = both.strategy.observe
    both.strategy.observe = lambda t: (seen.append(t), learn(t))
    env = gym.make("robocl/UGV-v0").unwrapped
    env.set_gains((-1.0, 1.0))
    obs, _ = env.reset(seed=0)
    before = [p.clone() for p in both.model.parameters()]
    refined = 0
    for step in range(20):
        action = both.act(obs)
        refined += not torch.allclose(torch.as_tensor(action, dtype=torch.float32), both.last_planned, atol=1e-4)
        nxt, *_ = env.step(action.astype("float32"))
        both.observe(obs, action, nxt)
        assert len(seen) == step + 1  # every step is learned, with the executed action
        torch.testing.assert_close(seen[-1].actions[0], torch.as_tensor(action, dtype=torch.float32))
        obs = nxt
    assert refined > 0
    assert not all(torch.equal(a, b) for a, b in zip(before, both.model.parameters()))


def test_afm_online_gated_plans_on_the_nominal_until_the_learner_predicts_better(small_setup):
    """refiner.with_learner=gated: stacked (the learner learns the refined robot against a frozen nominal), and
    the planner plans on the nominal copy until the learner's recent error is below 0.8x the nominal's."""
    from robocl.build.controller import make_controller
    from robocl.build.methods import parse_method
    from robocl.planning.costs import WaypointCost

    cfg, model, net, _, _ = small_setup
    cfg = OmegaConf.merge(cfg, {"planner": {"population": 64, "horizon": 5}, "refiner": {"with_learner": "gated"}})
    cost = WaypointCost()
    cost.set_goal(torch.tensor([2.0, 0.0]))
    gated = make_controller(cfg, parse_method("mppi_afm_online"), model, cost, seed=0, refiner_net=net)
    selector = gated.selector
    assert gated.learn_planned and selector.nominal is gated.refiner.model and selector.learner is gated.model
    assert selector.active is selector.nominal  # nothing measured yet: the nominal plans
    env = gym.make("robocl/UGV-v0").unwrapped
    obs, _ = env.reset(seed=0)
    for _ in range(30):
        action = gated.act(obs)
        nxt, *_ = env.step(action.astype("float32"))
        gated.observe(obs, action, nxt)
        obs = nxt
    assert selector.seen == 30 and selector.nominal_error > 0 and selector.learner_error > 0
    # the choice follows the averages: a learner whose error is a tenth of the nominal's plans after warm-up
    for _ in range(40):
        selector.update(0.1, 1.0)
    assert selector.active is selector.learner and selector.record()["learner_share"] > 0
    for _ in range(100):  # four half-lives of equal errors: 0.94 of the nominal's, above the 0.8 margin
        selector.update(1.0, 1.0)
    assert selector.active is selector.nominal and selector.switches >= 1
