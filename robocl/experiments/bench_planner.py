"""Planner benchmark: robocl MPPI beside the peers users run, same population, horizon, iterations and
threads, calls interleaved so machine noise hits all alike; and a roofline: the machine's matmul peak
measured in the same run against the FLOPs a plan's model evaluations cost.

Candidates (results.json `summary` names):
- `robocl_mppi`: robocl's MPPI on robocl's GaussianEnsemble (ours).
- `mbrl_mppi`: mbrl-lib's `MPPIOptimizer`, through its `TrajectoryOptimizerAgent.act`, on mbrl-lib's
  `GaussianMLP` ensemble (same members, width, depth; TS-inf "fixed_model" propagation) wrapped in its
  `OneDTransitionRewardModel` and `ModelEnv`: the PETS stack as mbrl-lib's examples assemble it.
- `pytorch_mppi_mbrl_model`: pytorch_mppi's `MPPI` rolling out that same mbrl-lib model.
- `pytorch_mppi_robocl_model`: pytorch_mppi's `MPPI` rolling out robocl's ensemble (isolates the planner).
- `robocl_mppi_bf16`: ours with `planner.precision=bf16` (the same plan, bf16 matmuls; its row's
  `frac_bf16_peak` is against the bf16 peak); left out when `planner.precision` is already bf16.
A peer that does not import is left out with a note saying how to install it.
"""

from __future__ import annotations

import types
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from robocl.bench.roofline import (
    achieved,
    ensemble_layer_shapes,
    matmul_peak_gflops,
    mlp_plan_flops,
    plot_roofline,
)
from robocl.bench.timing import interleaved_times, ratio_summary, timing_row
from robocl.build import checks as check
from robocl.build.models import make_model, model_path
from robocl.build.planners import mppi as build_mppi
from robocl.build.pretrained import pretrained_model
from robocl.errors import UsageError
from robocl.planning.costs import WaypointCost

OURS = "robocl_mppi"
MBRL = "mbrl_mppi"
PMPPI_MBRL = "pytorch_mppi_mbrl_model"
PMPPI_OURS = "pytorch_mppi_robocl_model"
OURS_BF16 = "robocl_mppi_bf16"  # robocl's planner with planner.precision=bf16, beside the fp32 one
CANDIDATES = (OURS, MBRL, PMPPI_MBRL, PMPPI_OURS)
GOAL = (3.0, 1.0)

INSTALL = {
    "pytorch_mppi": "pip install pytorch-mppi (in robocl's dev extras: pip install -e '.[dev]')",
    "mbrl": ("pip install --no-deps mbrl==0.2.0 termcolor (mbrl 0.2.0 pins hydra-core==1.0.3, which fails on "
             "Python 3.11, so it goes in without its pins beside robocl's hydra-core; `make` does this)"),
}


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _import_failure(*modules: str) -> str | None:
    """None when every module imports, else why not (the first failure)."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # a peer breaking on import (missing dependency, pin clash) is a peer left out
            return f"{type(exc).__name__}: {exc}"
    return None


def check_config(cfg: DictConfig) -> None:
    """The bench keys, before the run directory exists (one line per bad value)."""
    check.number(cfg, "bench.repeats", lo=1, integer=True)
    check.number(cfg, "bench.warmup", lo=0, integer=True)
    check.number(cfg, "bench.roofline.size", lo=16, integer=True)
    check.number(cfg, "bench.roofline.seconds", lo=0)
    check.number(cfg, "bench.sweep_seconds", lo=0)
    for key in ("bench.populations", "bench.horizons"):
        if OmegaConf.select(cfg, key) is not None:
            values = check.int_list(cfg, key)
            low = 2 if key == "bench.populations" else 1
            if min(values) < low:
                raise UsageError(f"{key}={list(values)}: every value must be an integer >= {low}")
    if OmegaConf.select(cfg, "bench.fleet") is not None:
        check.number(cfg, "bench.fleet", lo=1, integer=True)
    check.number(cfg, "planner.population", lo=2, integer=True)
    check.number(cfg, "planner.horizon", lo=1, integer=True)
    check.number(cfg, "planner.iterations", lo=1, integer=True)


def _pytorch_mppi(dynamics, nx: int, cfg: DictConfig):
    from pytorch_mppi import MPPI as PeerMPPI

    low = torch.tensor(list(cfg.robot.action_low), dtype=torch.float32)
    high = torch.tensor(list(cfg.robot.action_high), dtype=torch.float32)
    sigma = torch.diag(torch.tensor(list(cfg.planner.noise_sigma), dtype=torch.float32) ** 2)
    goal = torch.tensor(GOAL)

    def running_cost(states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return torch.linalg.vector_norm(states[:, :2] - goal, dim=-1)

    return PeerMPPI(dynamics, running_cost, nx, sigma, num_samples=int(cfg.planner.population),
                    horizon=int(cfg.planner.horizon), lambda_=float(cfg.planner.temperature), u_min=low, u_max=high)


def _pytorch_mppi_call(peer, state: torch.Tensor, iterations: int):
    """`iterations` refinements of one plan: the nominal sequence shifts once, as robocl's does."""
    def call():
        for i in range(iterations):
            out = peer.command(state, shift_nominal_trajectory=i == 0)
        return out
    return call


def _mbrl_stack(model, cfg: DictConfig) -> dict[str, Any]:
    """mbrl-lib's PETS stack sized like robocl's ensemble: GaussianMLP (fixed_model propagation: TS-inf),
    OneDTransitionRewardModel (delta targets, input normalizer), ModelEnv, and a TrajectoryOptimizerAgent
    running MPPIOptimizer (built with mbrl-lib's own create_trajectory_optim_agent_for_model)."""
    import gymnasium as gym
    import mbrl.models as mbrl_models
    import mbrl.planning as mbrl_planning

    codec = model.codec
    members, hidden = int(cfg.dynamics.ensemble_size), int(cfg.dynamics.hidden_size)
    torch.manual_seed(0)
    net = mbrl_models.GaussianMLP(in_size=codec.feature_dim + codec.action_dim, out_size=codec.state_dim,
                                  device="cpu", num_layers=int(cfg.dynamics.hidden_layers), ensemble_size=members,
                                  hid_size=hidden, propagation_method="fixed_model",
                                  activation_fn_cfg={"_target_": "torch.nn.SiLU"}).eval()
    dynamics = mbrl_models.OneDTransitionRewardModel(net, target_is_delta=True, normalize=True,
                                                     learned_rewards=False, obs_process_fn=codec.features)
    low = np.asarray(list(cfg.robot.action_low), dtype=np.float32)
    high = np.asarray(list(cfg.robot.action_high), dtype=np.float32)
    env = types.SimpleNamespace(observation_space=gym.spaces.Box(-np.inf, np.inf, (codec.state_dim,), np.float32),
                                action_space=gym.spaces.Box(low, high))
    goal = torch.tensor(GOAL)

    def reward_fn(actions: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        return -torch.linalg.vector_norm(next_obs[:, :2] - goal, dim=-1, keepdim=True)

    def termination_fn(actions: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        return torch.zeros(next_obs.shape[0], 1, dtype=torch.bool)

    model_env = mbrl_models.ModelEnv(env, dynamics, termination_fn, reward_fn,
                                     generator=torch.Generator().manual_seed(0))
    settings = {"num_iterations": int(cfg.planner.iterations), "population_size": int(cfg.planner.population),
                "gamma": 1.0 / float(cfg.planner.temperature),  # exp(gamma * reward): softmin(cost / temperature)
                "sigma": float(np.mean(list(cfg.planner.noise_sigma))), "beta": 0.9}
    agent_cfg = OmegaConf.create({
        "_target_": "mbrl.planning.TrajectoryOptimizerAgent",
        # hydra >= 1.1 instantiates nested configs itself; mbrl 0.2.0 (written for hydra 1.0) instantiates its
        # optimizer_cfg after filling in the action bounds, so the agent must receive it as a config
        "_recursive_": False,
        "action_lb": "???", "action_ub": "???", "planning_horizon": int(cfg.planner.horizon),
        "replan_freq": 1, "verbose": False,
        "optimizer_cfg": {"_target_": "mbrl.planning.MPPIOptimizer", **settings,
                          "lower_bound": "???", "upper_bound": "???", "device": "cpu"},
    })
    agent = mbrl_planning.create_trajectory_optim_agent_for_model(model_env, agent_cfg, num_particles=1)
    indices = net.sample_propagation_indices(int(cfg.planner.population), None)

    def step(states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """One batched model step for pytorch_mppi: the 1-D model's mean prediction (TS-inf indices)."""
        return dynamics.sample(actions, {"obs": states, "propagation_indices": indices}, deterministic=True)[0]

    shapes = [(int(layer[0].weight.shape[-2]), int(layer[0].weight.shape[-1])) for layer in net.hidden_layers]
    shapes.append(tuple(int(d) for d in net.mean_and_logvar.weight.shape[-2:]))  # mean and log-variance
    return {"agent": agent, "step": step, "layer_shapes": shapes, "settings": settings}


def _mbrl_setup(cfg: DictConfig, settings: dict) -> dict[str, Any]:
    return {"planner": "mbrl.planning.MPPIOptimizer via TrajectoryOptimizerAgent.act (replan_freq=1)",
            "model": (f"mbrl.models.GaussianMLP ensemble_size={cfg.dynamics.ensemble_size} "
                      f"hid_size={cfg.dynamics.hidden_size} num_layers={cfg.dynamics.hidden_layers} SiLU, "
                      "propagation fixed_model, in OneDTransitionRewardModel + ModelEnv, fresh weights"),
            "settings": settings, "install": INSTALL["mbrl"]}


def _roofline(cfg: DictConfig, progress, before: dict[str, Any] | None = None) -> dict[str, Any]:
    """The matmul peaks; measured before and after the timed plans (`before`: the first measurement), the
    better of the two counts, so a burst of other work on a shared machine does not sink the peak."""
    size, seconds = int(cfg.bench.roofline.size), float(cfg.bench.roofline.seconds)
    task = progress.add_task("matmul peak", total=2, status=f"{size}x{size} {'after' if before else 'before'}")
    fp32 = matmul_peak_gflops(torch.float32, size, seconds)
    progress.update(task, completed=1)
    bf16 = matmul_peak_gflops(torch.bfloat16, size, seconds)
    progress.update(task, completed=2)
    if before:
        fp32, bf16 = max(fp32, before["fp32_peak_gflops"]), max(bf16, before["bf16_peak_gflops"])
    return {"fp32_peak_gflops": fp32, "bf16_peak_gflops": bf16, "matmul_size": size,
            "threads": torch.get_num_threads()}


def _sweep(cfg: DictConfig, model, cost, shapes, peaks: dict, progress) -> list[dict[str, Any]]:
    """robocl's planner alone over bench.populations x bench.horizons (the planner's value where one is unset)."""
    populations = [int(v) for v in (cfg.bench.populations or [cfg.planner.population])]
    horizons = [int(v) for v in (cfg.bench.horizons or [cfg.planner.horizon])]
    budget, most = float(cfg.bench.sweep_seconds), int(cfg.bench.repeats)
    members, iterations = int(model.ensemble_size), int(cfg.planner.iterations)
    state = torch.zeros(model.codec.state_dim)
    grid = [(h, p) for h in horizons for p in populations]
    task = progress.add_task("roofline sweep", total=len(grid), status="")
    rows = []
    for i, (horizon, population) in enumerate(grid):
        node = OmegaConf.merge(cfg.planner, {"population": population, "horizon": horizon})
        planner = build_mppi(node, model.step, cost, cfg.robot, seed=0)
        progress.update(task, status=f"P={population} H={horizon}")
        plan = {OURS: lambda planner=planner: planner.plan(state)}
        with torch.inference_mode():
            plan[OURS]()  # warm-up; the next call's time sizes the number of timed calls
            probe = interleaved_times(plan, 1, 0)[OURS]
            calls = int(min(most, max(3, budget * 1e3 // max(float(probe[0]), 1e-3))))
            ms = interleaved_times(plan, calls, 0)[OURS]
        flops = mlp_plan_flops(shapes, population, horizon, iterations, members)
        row = {"population": population, "horizon": horizon, "iterations": iterations,
               "plan_ms_median": float(np.median(ms)), "plan_ms_p95": float(np.percentile(ms, 95)),
               "calls": int(ms.size)}
        rows.append(row | achieved(flops, row["plan_ms_median"], peaks["fp32_peak_gflops"],
                                   peaks["bf16_peak_gflops"]))
        progress.update(task, completed=i + 1)
    return rows


def run(cfg: DictConfig, progress) -> dict[str, Any]:
    # timing does not depend on the weights' values: fresh weights unless model=PATH names a trained model
    model = (pretrained_model(cfg, log=progress.log)[0] if model_path(cfg) is not None else make_model(cfg)).eval()
    cost = WaypointCost()
    cost.set_goal(torch.tensor(GOAL))
    ours = build_mppi(cfg.planner, model.step, cost, cfg.robot, seed=0)
    state = torch.zeros(model.codec.state_dim)
    population, horizon = int(cfg.planner.population), int(cfg.planner.horizon)
    iterations = int(cfg.planner.iterations)
    candidates = {OURS: lambda: ours.plan(state)}
    flops: dict[str, int] = {}
    notes: list[str] = []
    versions = {"robocl": _version("robocl") or "0+unknown", "torch": torch.__version__}
    peers: dict[str, dict[str, Any]] = {
        OURS: {"planner": "robocl.planning.MPPI", "packages": versions,
               "model": (f"robocl GaussianEnsemble ensemble_size={cfg.dynamics.ensemble_size} "
                         f"hidden_size={cfg.dynamics.hidden_size} hidden_layers={cfg.dynamics.hidden_layers}"
                         if hasattr(model, "ensemble_size") else type(model).__name__)},
    }
    try:
        shapes = ensemble_layer_shapes(model)
        flops[OURS] = flops[PMPPI_OURS] = mlp_plan_flops(shapes, population, horizon, iterations,
                                                         int(model.ensemble_size))
    except ValueError as exc:
        shapes = None
        notes.append(f"roofline: {exc}")
    if str(OmegaConf.select(cfg.planner, "precision", default="fp32")) == "fp32":
        try:
            node = OmegaConf.create({**OmegaConf.to_container(cfg.planner, resolve=True), "precision": "bf16"})
            ours_bf16 = build_mppi(node, model.step, cost, cfg.robot, seed=0)
            candidates[OURS_BF16] = lambda: ours_bf16.plan(state)
            peers[OURS_BF16] = peers[OURS] | {"planner": "robocl.planning.MPPI, planner.precision=bf16"}
            if OURS in flops:
                flops[OURS_BF16] = flops[OURS]
        except UsageError as exc:
            notes.append(f"{OURS_BF16} left out: {exc}")

    mbrl_failure = _import_failure("mbrl.models", "mbrl.planning")
    pmppi_failure = _import_failure("pytorch_mppi")
    stack = None
    if mbrl_failure is None and population % int(cfg.dynamics.ensemble_size):
        mbrl_failure = (f"planner.population={population} is not a multiple of dynamics.ensemble_size="
                        f"{cfg.dynamics.ensemble_size} (GaussianMLP's fixed_model propagation needs one)")
    if mbrl_failure is None:
        stack = _mbrl_stack(model, cfg)
        obs = np.zeros(model.codec.state_dim, dtype=np.float32)
        candidates[MBRL] = lambda: stack["agent"].act(obs)
        mbrl_flops = mlp_plan_flops(stack["layer_shapes"], population, horizon, iterations,
                                    int(cfg.dynamics.ensemble_size))
        flops[MBRL] = flops[PMPPI_MBRL] = mbrl_flops
        packages = {name: _version(name) for name in ("mbrl", "hydra-core", "omegaconf", "termcolor")}
        peers[MBRL] = _mbrl_setup(cfg, stack["settings"]) | {"packages": packages}
    else:
        notes.append(f"{MBRL} and {PMPPI_MBRL} left out: mbrl-lib does not import ({mbrl_failure}); "
                     f"to include them: {INSTALL['mbrl']}")
    if pmppi_failure is None:
        pmppi = {"planner": "pytorch_mppi.MPPI.command", "packages": {"pytorch-mppi": _version("pytorch-mppi")},
                 "install": INSTALL["pytorch_mppi"]}
        if stack is not None:
            peer_mbrl = _pytorch_mppi(stack["step"], model.codec.state_dim, cfg)
            candidates[PMPPI_MBRL] = _pytorch_mppi_call(peer_mbrl, state, iterations)
            peers[PMPPI_MBRL] = pmppi | {"model": f"the {MBRL} model (OneDTransitionRewardModel.sample, mean)"}
        peer_ours = _pytorch_mppi(model.step, model.codec.state_dim, cfg)
        candidates[PMPPI_OURS] = _pytorch_mppi_call(peer_ours, state, iterations)
        peers[PMPPI_OURS] = pmppi | {"model": f"the {OURS} model (GaussianEnsemble.step)"}
    else:
        notes.append(f"{PMPPI_MBRL} and {PMPPI_OURS} left out: pytorch_mppi does not import ({pmppi_failure}); "
                     f"to include them: {INSTALL['pytorch_mppi']}")

    roofline = _roofline(cfg, progress)
    repeats, warmup = int(cfg.bench.repeats), int(cfg.bench.warmup)
    task = progress.add_task("planner", total=repeats, status=f"P={population} H={horizon} x{len(candidates)}")
    with torch.inference_mode():
        times = interleaved_times(candidates, repeats, warmup, lambda i: progress.update(task, completed=i))
    roofline = _roofline(cfg, progress, before=roofline)
    label = f"P{population}_H{horizon}_E{cfg.dynamics.ensemble_size}"
    runs = []
    for name, ms in times.items():
        row = timing_row(name, label, ms) | {"control_hz": 1000.0 / float(ms.mean())}
        if name in flops:
            row |= achieved(flops[name], row["plan_ms_median"], roofline["fp32_peak_gflops"],
                            roofline["bf16_peak_gflops"])
        runs.append(row)

    extra = {"roofline": roofline, "peers": peers}
    lines = _lines(runs, roofline)
    if OmegaConf.select(cfg, "bench.fleet") is not None:
        extra["fleet"] = _fleet(cfg, model, int(cfg.bench.fleet), progress)
        f = extra["fleet"]
        lines.append(f"fleet of {f['robots']}: one batched call {f['batched_ms_median']:.1f} ms, {f['robots']} "
                     f"separate plans {f['separate_ms_median']:.1f} ms ({f['separate_over_batched_median']:.2f}x)")
    files = {}
    if cfg.bench.populations is not None or cfg.bench.horizons is not None:
        if shapes is None:
            notes.append("roofline sweep skipped: the model's plan FLOPs are not counted")
        else:
            roofline["sweep"] = _sweep(cfg, model, cost, shapes, roofline, progress)
            peaks = {"fp32": roofline["fp32_peak_gflops"], "bf16": roofline["bf16_peak_gflops"]}
            title = (f"E{cfg.dynamics.ensemble_size}x{cfg.dynamics.hidden_layers}x{cfg.dynamics.hidden_size}, "
                     f"{iterations} iteration(s), {roofline['threads']} thread(s)")
            files["roofline.png"] = lambda path: plot_roofline(roofline["sweep"], peaks, path, title)
    return {"runs": runs, "ratios": ratio_summary(times, OURS), "notes": notes, "files": files,
            "extra": extra, "lines": lines}


def _fleet(cfg: DictConfig, model, robots: int, progress) -> dict[str, Any]:
    """`robots` robots planned in one batched call (robocl.planning.batched) against as many separate plans,
    interleaved, each robot toward its own waypoint."""
    from robocl.build.planners import fleet_mppi

    goals = torch.tensor(GOAL) + torch.arange(robots, dtype=torch.float32)[:, None] * 0.5
    fleet_cost = WaypointCost()
    fleet_cost.set_goals(goals)
    fleet = fleet_mppi(cfg.planner, model.step, fleet_cost, cfg.robot, robots, seed=0)
    singles = []
    for goal in goals:
        cost = WaypointCost()
        cost.set_goal(goal)
        singles.append(build_mppi(cfg.planner, model.step, cost, cfg.robot, seed=0))
    states = torch.zeros(robots, model.codec.state_dim)
    candidates = {"batched": lambda: fleet.plan(states),
                  "separate": lambda: [p.plan(s) for p, s in zip(singles, states)]}
    repeats = max(10, int(cfg.bench.repeats) // 4)
    task = progress.add_task("fleet", total=repeats, status=f"{robots} robots")
    with torch.inference_mode():
        times = interleaved_times(candidates, repeats, min(5, int(cfg.bench.warmup)),
                                  lambda i: progress.update(task, completed=i))
    out: dict[str, Any] = {"robots": robots, "calls": repeats}
    for name, ms in times.items():
        out[f"{name}_ms_median"], out[f"{name}_ms_p95"] = (float(v) for v in np.percentile(ms, [50, 95]))
    out["separate_over_batched_median"] = out["separate_ms_median"] / out["batched_ms_median"]
    out["batched_ms_per_robot"] = out["batched_ms_median"] / robots
    return out


def _lines(runs: list[dict], roofline: dict) -> list[str]:
    lines = [f"matmul peak ({roofline['threads']} thread(s), {roofline['matmul_size']}^2): "
             f"fp32 {roofline['fp32_peak_gflops']:.1f} GFLOP/s, bf16 {roofline['bf16_peak_gflops']:.1f} GFLOP/s"]
    for row in runs:
        if "gflops" in row:
            peak = "bf16" if row["method"] == OURS_BF16 else "fp32"
            lines.append(f"{row['method']}: {row['flops_per_plan'] / 1e9:.3f} GFLOP/plan, {row['gflops']:.1f} GFLOP/s, "
                         f"{row[f'frac_{peak}_peak']:.2f} of {peak} peak")
    for point in roofline.get("sweep", []):
        lines.append(f"sweep P={point['population']} H={point['horizon']}: {point['plan_ms_median']:.2f} ms, "
                     f"{point['gflops']:.1f} GFLOP/s, {point['frac_fp32_peak']:.2f} of fp32 peak")
    return lines
