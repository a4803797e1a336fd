"""`excitation.*`: the recording dither (robocl/sim/excitation.py) has the std and correlation asked for,
stays in the command box, leaves a safe command alone, and reaches the recorded log of a real run."""

from __future__ import annotations

import numpy as np
import torch
from conftest import SMALL_UGV, cli, one_line_exit_2

from robocl.build.models import make_model
from robocl.cli.app import compose
from robocl.cli.run import main as run_main
from robocl.continual.base import ContinualStrategy
from robocl.control import Controller
from robocl.planning.costs import WaypointCost
from robocl.planning.mppi import MPPI
from robocl.sim.excitation import Excitation, ExcitedController


def test_dither_has_the_std_and_correlation_asked_for_and_stays_in_the_box():
    std, decay = np.array([0.2, 0.1]), 0.8
    ex = Excitation(std, decay, low=np.array([-10.0, -10.0]), high=np.array([10.0, 10.0]), seed=0)
    d = np.stack([ex(np.zeros(2)) for _ in range(40_000)])
    assert np.allclose(d.std(0), std, rtol=0.05), d.std(0)
    lag1 = [np.corrcoef(d[1:, i], d[:-1, i])[0, 1] for i in range(2)]
    assert np.allclose(lag1, decay, atol=0.02), lag1
    tight = Excitation(np.array([5.0]), 0.0, low=np.array([-1.0]), high=np.array([1.0]), seed=1)
    out = np.stack([tight(np.array([0.9])) for _ in range(1000)])
    assert out.min() >= -1.0 and out.max() <= 1.0 and (out == 1.0).any() and (out == -1.0).any()


def test_a_safe_command_goes_out_undithered():
    cfg, _ = compose(["robot=ugv", "dynamics.ensemble_size=2", "dynamics.hidden_size=16"])
    torch.manual_seed(0)
    model = make_model(cfg).eval()
    low, high = list(cfg.robot.action_low), list(cfg.robot.action_high)
    planner = MPPI(model.step, WaypointCost(), action_low=low, action_high=high, horizon=3, population=16,
                   iterations=1, noise_sigma=[0.5, 0.5], seed=0)
    controller = Controller(model, planner, ContinualStrategy(model), safe_action=np.zeros(2))
    excited = ExcitedController(controller, Excitation(np.array([0.3, 0.3]), 0.5, np.array(low), np.array(high), 0))
    healthy = np.zeros(controller.model.codec.state_dim)
    planned = [excited.act(healthy) for _ in range(5)]
    assert all(np.all(np.abs(a) > 0) for a in planned)  # dithered planned commands
    broken = healthy.copy()
    broken[0] = np.nan
    assert np.array_equal(excited.act(broken), np.zeros(2))  # the safe stop, exactly
    assert len(excited.stats.safety_events) == 1
    excited.state_limit = 5.0  # a setting given to the wrapper is the controller's
    assert controller.state_limit == 5.0 and excited.is_healthy(np.full_like(healthy, 6.0)) is not None


def test_bad_excitation_is_one_line(capsys):
    for bad, words in (("excitation.std=-0.1", "excitation.std"), ("excitation.std=[0.1,0.2,0.3]", "excitation.std"),
                       ("excitation.decay=1.0", "excitation.decay")):
        code, _, err = cli(run_main, ["experiment=ugv_continual", bad, "seeds=[0]"], capsys)
        one_line_exit_2(code, err, words)


def recorded_actions(folder) -> np.ndarray:
    """The commands of the one episode recorded under `folder`, read as robocl-train reads them."""
    from robocl.cli.recorded import mapping_from
    from robocl.offline.dataset import read_recorded
    from robocl.offline.readers import discover

    cfg, _ = compose(["robot=ugv", f"data.path={folder}"], config_name="eval")
    data = read_recorded(discover(folder), mapping_from(cfg))
    return np.concatenate([s.actions for s in data.segments])


def test_a_run_records_the_dithered_commands_it_sent(tmp_path, capsys):
    """The same seed with and without excitation: the recorded commands differ by the dither, which is
    zero-mean and of about the size asked for, and every one lies in the command box."""
    runs = {}
    for name, extra in (("plain", []), ("excited", ["excitation.std=0.2", "excitation.decay=0.0"])):
        code, _, err = cli(run_main, [*SMALL_UGV, "experiment=ugv_continual", "methods=[mppi]", "seeds=[0]",
                                      "task.map=[city_a]", "budget.max_steps=60", "planner.population=100",
                                      f"record={tmp_path / name}", f"hydra.run.dir={tmp_path / ('run_' + name)}",
                                      *extra], capsys)
        assert code == 0, err
        runs[name] = recorded_actions(tmp_path / name)
    plain, excited = runs["plain"], runs["excited"]
    cfg, _ = compose(["robot=ugv"])
    low, high = np.asarray(cfg.robot.action_low), np.asarray(cfg.robot.action_high)
    assert (excited >= low - 1e-6).all() and (excited <= high + 1e-6).all()
    first = excited[0] - plain[0]  # same state, same plan: the first difference is the dither alone
    assert 0 < np.abs(first).max() < 1.0
    assert not np.allclose(plain[: len(excited)], excited[: len(plain)])


def test_the_ros_node_sends_dithered_commands_when_asked():
    """robocl-ros excitation.std=...: the node's controller dithers (for recording the user's robot),
    keeps the node's settings, and is the plain controller when excitation is off."""
    from robocl_ros.node import build_controller
    from robocl_ros.robots import BINDINGS

    for std, wrapped in (("0.3", True), ("0.0", False)):
        cfg, _ = compose(["experiment=ros_ugv", f"excitation.std={std}", "dynamics.ensemble_size=2",
                          "dynamics.hidden_size=16", "planner.population=16", "planner.horizon=3"])
        torch.manual_seed(0)
        controller, _, _ = build_controller(cfg, BINDINGS["ugv"], make_model(cfg).eval(), None)
        assert isinstance(controller, ExcitedController) is wrapped
        state = np.zeros(controller.model.codec.state_dim)
        low, high = np.asarray(cfg.robot.action_low), np.asarray(cfg.robot.action_high)
        commands = np.stack([controller.act(state) for _ in range(20)])
        assert (commands >= low).all() and (commands <= high).all()
