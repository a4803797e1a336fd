"""Planners drive known systems to their goals (real batched MPPI/CEM, analytic dynamics)."""

import pytest
import torch

from robocl.planning.base import rollout
from robocl.planning.cem import CEM
from robocl.planning.costs import QuadraticGoalCost
from robocl.planning.mppi import MPPI

DT = 0.1


def double_integrator(states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """2-D double integrator: state (px, py, vx, vy), action (ax, ay)."""
    pos, vel = states[:, :2], states[:, 2:]
    vel = vel + DT * actions
    return torch.cat([pos + DT * vel, vel], dim=1)


def drive(planner, steps: int = 80) -> torch.Tensor:
    state = torch.tensor([2.0, -1.5, 0.0, 0.0])
    for _ in range(steps):
        action = planner.plan(state)
        assert torch.all(action <= 1.0 + 1e-6) and torch.all(action >= -1.0 - 1e-6)
        state = double_integrator(state[None], action[None])[0]
    return state


@pytest.mark.parametrize("kind", ["mppi", "cem"])
def test_planner_drives_double_integrator_to_goal(kind):
    cost = QuadraticGoalCost(torch.zeros(4), torch.tensor([1.0, 1.0, 0.1, 0.1]))
    common = dict(horizon=15, population=400, noise_sigma=0.6, seed=0)
    if kind == "mppi":
        planner = MPPI(double_integrator, cost, [-1, -1], [1, 1], temperature=0.5, **common)
    else:
        planner = CEM(double_integrator, cost, [-1, -1], [1, 1], iterations=3, **common)
    final = drive(planner)
    assert torch.linalg.vector_norm(final[:2]) < 0.15, final
    assert torch.linalg.vector_norm(final[2:]) < 0.3, final


def test_untrained_planner_does_not_reach_goal_with_zero_action():
    """Control for the test above: doing nothing leaves the system far from the goal."""
    state = torch.tensor([2.0, -1.5, 0.0, 0.0])
    for _ in range(80):
        state = double_integrator(state[None], torch.zeros(1, 2))[0]
    assert torch.linalg.vector_norm(state[:2]) > 2.0


def test_rollout_shapes_and_values():
    actions = torch.ones(3, 4, 2)
    states = rollout(double_integrator, torch.zeros(4), actions)
    assert states.shape == (3, 5, 4)
    # v_t = t*DT, p_t = DT^2 * t(t+1)/2 with semi-implicit Euler
    assert torch.allclose(states[0, 4, 2], torch.tensor(4 * DT))
    assert torch.allclose(states[0, 4, 0], torch.tensor(DT * DT * 10))


def test_warm_start_shifts_plan():
    cost = QuadraticGoalCost(torch.zeros(4), torch.ones(4))
    planner = MPPI(double_integrator, cost, [-1, -1], [1, 1], horizon=5, population=100, seed=1)
    planner.plan(torch.tensor([1.0, 1.0, 0.0, 0.0]))
    before = planner.mean.clone()
    planner.shift()
    assert torch.equal(planner.mean[:-1], before[1:])
    assert torch.equal(planner.mean[-1], before[-1])


def test_invalid_planner_settings_raise():
    cost = QuadraticGoalCost(torch.zeros(4), torch.ones(4))
    with pytest.raises(ValueError):
        MPPI(double_integrator, cost, [-1, -1], [1, 1], horizon=-1)
    with pytest.raises(ValueError):
        MPPI(double_integrator, cost, [-1, -1], [1, 1], temperature=0)


@pytest.mark.parametrize("kind", ["mppi", "cem"])
def test_population_changes_at_runtime_keeping_the_warm_start(kind):
    """A real-time caller shrinks the sample budget mid-run: the next plan samples that many sequences,
    the warm start carries over, and the planner still reaches the goal on a quarter of its samples."""
    cost = QuadraticGoalCost(torch.zeros(4), torch.tensor([1.0, 1.0, 0.1, 0.1]))
    common = dict(horizon=15, population=400, noise_sigma=0.6, seed=0)
    planner = (MPPI(double_integrator, cost, [-1, -1], [1, 1], temperature=0.5, **common) if kind == "mppi"
               else CEM(double_integrator, cost, [-1, -1], [1, 1], iterations=3, **common))
    planner.plan(torch.tensor([2.0, -1.5, 0.0, 0.0]))
    mean = planner.mean.clone()
    assert planner.set_population(100) == 100 == planner.population
    assert torch.equal(planner.mean, mean)  # the warm start is per horizon step, not per sample
    planner.plan(torch.tensor([2.0, -1.5, 0.0, 0.0]))
    assert planner.last_cost.shape == (100,)
    final = drive(planner)
    assert torch.linalg.vector_norm(final[:2]) < 0.25, final
    for bad in (1, 0, 2.5, True):
        with pytest.raises(ValueError):
            planner.set_population(bad)
    assert planner.population == 100


def test_batched_mppi_for_one_robot_is_mppi():
    from robocl.planning.batched import BatchedMPPI

    cost = QuadraticGoalCost(torch.zeros(4), torch.tensor([1.0, 1.0, 0.1, 0.1]))

    def fleet_cost(states, actions):  # (N, P, H+1, S) -> (N, P)
        n, p = states.shape[:2]
        return cost(states.reshape(n * p, *states.shape[2:]), actions.reshape(n * p, *actions.shape[2:])).reshape(n, p)

    common = dict(horizon=10, population=200, noise_sigma=0.6, temperature=0.5, seed=3)
    single = MPPI(double_integrator, cost, [-1, -1], [1, 1], **common)
    fleet = BatchedMPPI(double_integrator, fleet_cost, [-1, -1], [1, 1], robots=1, **common)
    state = torch.tensor([2.0, -1.5, 0.0, 0.0])
    for _ in range(5):
        a, b = single.plan(state), fleet.plan(state[None])[0]
        assert torch.allclose(a, b, atol=1e-6), (a, b)
        state = double_integrator(state[None], a[None])[0]


def test_batched_mppi_drives_each_robot_to_its_own_goal():
    from robocl.planning.batched import BatchedMPPI

    goals = torch.tensor([[0.0, 0.0, 0, 0], [1.0, 1.0, 0, 0], [-1.0, 0.5, 0, 0]])
    weights = torch.tensor([1.0, 1.0, 0.1, 0.1])

    def fleet_cost(states, actions):
        err = (states[:, :, 1:] - goals[:, None, None]) ** 2 * weights
        return err.sum((-2, -1)) + 0.01 * actions.pow(2).sum((-2, -1))

    fleet = BatchedMPPI(double_integrator, fleet_cost, [-1, -1], [1, 1], robots=3, horizon=15, population=400,
                        noise_sigma=0.6, temperature=0.5, seed=0)
    states = torch.tensor([[2.0, -1.5, 0, 0], [-1.0, -1.0, 0, 0], [1.5, 1.5, 0, 0]])
    for _ in range(80):
        actions = fleet.plan(states)
        assert actions.shape == (3, 2) and torch.all(actions.abs() <= 1 + 1e-6)
        states = double_integrator(states, actions)
    assert torch.all(torch.linalg.vector_norm(states[:, :2] - goals[:, :2], dim=-1) < 0.15), states
    with pytest.raises(ValueError, match="one per robot"):
        fleet.plan(states[:2])


def test_waypoint_cost_scores_a_fleet_like_each_robot_alone():
    from robocl.planning.costs import WaypointCost

    g = torch.Generator().manual_seed(0)
    states, actions = torch.randn(2, 7, 6, 5, generator=g), torch.randn(2, 7, 5, 2, generator=g)
    goals = torch.tensor([[1.0, 2.0], [-3.0, 0.5]])
    one, fleet = WaypointCost(reverse_weight=0.5), WaypointCost(reverse_weight=0.5)
    fleet.set_goals(goals)
    together = fleet(states, actions)
    for i in range(2):
        one.set_goal(goals[i])
        assert torch.allclose(together[i], one(states[i], actions[i]))
