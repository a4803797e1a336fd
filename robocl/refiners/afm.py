"""Action Flow Matching (AFM): refine a planned action so the realized transition matches the plan.

The planner trusts a nominal learned model; when the real robot drifts (a gain intervention, a
payload), the action it plans no longer does what it predicts. A conditional flow transports the
planned action `a_p` to the intended action `a*` that realizes the planned transition in the current
regime. The regime is inferred *in context* from recent transitions (state features, executed
action, state error = realized - nominal prediction for that action); no gradient step runs on the
robot. The flow ODE t: 0 -> 1 is integrated with torchdyn's `NeuralODE`.

Regime switching follows the paper: when the realized next state misses the planned one by more than
`threshold`, the raw planned action is executed once to observe the new regime cleanly, the context
is re-registered from that transition, and refinement resumes. The test is robocl's one change detector
(robocl.continual.changepoint) set to that rule, against the miss's own level since the last switch
(learned over `cooldown` steps): a switch also needs the miss `switch_factor` x above that level, so a
regime the flow cannot fully correct (its miss stays above the threshold) is not declared over and over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torchdyn.core import NeuralODE

from robocl.continual.changepoint import ChangeDetector
from robocl.refiners.base import Refiner

SOLVERS = ("midpoint", "euler", "rk4")


def _mlp(sizes: list[int], last_act: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or last_act:
            layers.append(nn.SiLU())
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class AFMShape:
    """Dimensions of one robot's AFM problem (from its codec and action box)."""

    feature_dim: int
    action_dim: int
    target_dim: int
    context_size: int = 8
    hidden: int = 128
    embed: int = 64

    @property
    def row_dim(self) -> int:
        """One context row: state features, executed action, state error (target space)."""
        return self.feature_dim + self.action_dim + self.target_dim


class AFMNet(nn.Module):
    """v(x_t, t | regime, state, a_p): action and regime encoders plus a small MLP flow head.

    The planned action is part of the condition, not only the flow's start point: a continuous
    flow map is orientation-preserving, so without it no ODE could carry a_p to a sign-flipped
    intended action (gain (-1, 2) maps (v, w) to (-v, w/2)); all straight paths would meet at 0.
    Everything is normalized inside (buffers saved with the weights), so the checkpoint alone
    maps raw states/actions/errors to raw actions. The condition's contribution to the head's
    first layer is computed once per refinement, not once per ODE step (latency).
    """

    def __init__(self, shape: AFMShape) -> None:
        super().__init__()
        self.shape = shape
        f, a, d, h, e = shape.feature_dim, shape.action_dim, shape.target_dim, shape.hidden, shape.embed
        self.register_buffer("feat_mean", torch.zeros(f))
        self.register_buffer("feat_std", torch.ones(f))
        self.register_buffer("act_center", torch.zeros(a))
        self.register_buffer("act_scale", torch.ones(a))
        self.register_buffer("err_scale", torch.ones(d))
        self.context_encoder = _mlp([shape.row_dim, h, h, e], last_act=True)
        self.regime_head = _mlp([e, h, e], last_act=True)
        self.state_encoder = _mlp([f, e], last_act=True)
        self.action_encoder = _mlp([a, e], last_act=True)
        self.cond_proj = nn.Linear(3 * e, h)
        self.flow_in = nn.Linear(a + 1, h, bias=False)
        self.head = nn.Sequential(nn.SiLU(), nn.Linear(h, h), nn.SiLU(), nn.Linear(h, a))

    # ---- normalization ------------------------------------------------------------------------
    def set_normalization(self, feat_mean: Tensor, feat_std: Tensor, act_low: Tensor, act_high: Tensor,
                          err_scale: Tensor) -> None:
        with torch.no_grad():
            self.feat_mean.copy_(feat_mean)
            self.feat_std.copy_(feat_std.clamp_min(1e-6))
            self.act_center.copy_((act_high + act_low) / 2)
            self.act_scale.copy_(((act_high - act_low) / 2).clamp_min(1e-6))
            self.err_scale.copy_(err_scale.clamp_min(1e-6))

    def norm_action(self, a: Tensor) -> Tensor:
        return (a - self.act_center) / self.act_scale

    def denorm_action(self, x: Tensor) -> Tensor:
        return x * self.act_scale + self.act_center

    def norm_rows(self, rows: Tensor) -> Tensor:
        f, a = self.shape.feature_dim, self.shape.action_dim
        return torch.cat([(rows[..., :f] - self.feat_mean) / self.feat_std,
                          self.norm_action(rows[..., f:f + a]),
                          rows[..., f + a:] / self.err_scale], dim=-1)

    # ---- network ------------------------------------------------------------------------------
    def condition(self, features: Tensor, rows: Tensor, mask: Tensor, planned: Tensor) -> Tensor:
        """Condition vector (B, hidden) from current state features (B, F), context rows (B, K, C)
        with validity mask (B, K) and the planned action (B, A); the regime is a masked mean over
        encoded rows."""
        enc = self.context_encoder(self.norm_rows(rows))
        w = mask.to(enc.dtype).unsqueeze(-1)
        pooled = (enc * w).sum(-2) / w.sum(-2).clamp_min(1.0)
        regime = self.regime_head(pooled)
        state = self.state_encoder((features - self.feat_mean) / self.feat_std)
        action = self.action_encoder(self.norm_action(planned))
        return self.cond_proj(torch.cat([regime, state, action], dim=-1))

    def velocity(self, x: Tensor, t: Tensor, cond: Tensor) -> Tensor:
        """Velocity in normalized action space; x (B, A), t scalar or (B,), cond (B, hidden)."""
        # Functional form of head(flow_in([x, t]) + cond), called 20x per refinement: the time
        # column of flow_in is added as a rank-1 term instead of concatenating t to x, and the
        # layers are fused multiply-adds (module-call and cat overhead dominate at batch size 1).
        _, l1, _, l2 = self.head
        w = self.flow_in.weight
        a = x.shape[-1]
        h = torch.addmm(cond, x, w[:, :a].t()) + t.to(x).reshape(-1, 1) * w[:, a]  # t: scalar or (B,)
        h = torch.addmm(l1.bias, F.silu(h), l1.weight.t())
        return torch.addmm(l2.bias, F.silu(h), l2.weight.t())

    def cfm_loss(self, features: Tensor, rows: Tensor, mask: Tensor, planned: Tensor, intended: Tensor,
                 generator: torch.Generator | None = None) -> Tensor:
        """Conditional flow matching: x_t = (1-t) a_p + t a*, regress a* - a_p (normalized)."""
        x0, x1 = self.norm_action(planned), self.norm_action(intended)
        t = torch.rand(x0.shape[0], generator=generator, device=x0.device)
        xt = x0 + t.unsqueeze(-1) * (x1 - x0)
        pred = self.velocity(xt, t, self.condition(features, rows, mask, planned))
        return (pred - (x1 - x0)).pow(2).mean()


class _ConditionedField(nn.Module):
    """torchdyn vector field: the condition is fixed for one integration (set by `AFMFlow`).

    The network is held outside module registration: torchdyn walks `named_modules()` of the
    field at every evaluation, which cost more than the network itself (latency).
    """

    def __init__(self, net: AFMNet) -> None:
        super().__init__()
        self._net = (net,)
        self.cond: Tensor | None = None

    def forward(self, t: Tensor, x: Tensor, args: Any = None) -> Tensor:
        return self._net[0].velocity(x, t, self.cond)


class AFMFlow:
    """Batched transport of planned actions with a torchdyn `NeuralODE` (fixed-step solver).

    With gradients on (training, checks) the whole `NeuralODE` runs. On the inference hot path the
    same torchdyn solver object is stepped directly over the fixed grid: `odeint`'s per-step
    bookkeeping (save-point matching, the DEFunc wrapper) cost as much as the network itself at
    batch size 1 (2.5 ms vs 1.3 ms for 10 midpoint steps on 2 cores); the values are the same.
    """

    def __init__(self, net: AFMNet, solver: str = "midpoint", steps: int = 10) -> None:
        if solver not in SOLVERS:
            raise ValueError(f"solver={solver!r}: accepted {', '.join(SOLVERS)}")
        if steps < 1:
            raise ValueError(f"steps={steps}: must be >= 1")
        self.net = net
        self.field = _ConditionedField(net)
        self.ode = NeuralODE(self.field, solver=solver, sensitivity="autograd", return_t_eval=False,
                             optimizable_params=list(net.parameters()))
        self.t_span = torch.linspace(0.0, 1.0, steps + 1)
        self._grid = list(zip(self.t_span[:-1], self.t_span[1:] - self.t_span[:-1]))

    def transport(self, features: Tensor, rows: Tensor, mask: Tensor, planned: Tensor,
                  fast: bool | None = None) -> Tensor:
        """Refined actions (B, A) for planned actions (B, A) under per-sample contexts.

        `fast` (default: whenever gradients are off) steps the NeuralODE's solver directly."""
        fast = not torch.is_grad_enabled() if fast is None else fast
        self.field.cond = self.net.condition(features, rows, mask, planned)
        try:
            x = self.net.norm_action(planned)
            if fast:
                for t, dt in self._grid:
                    _, x, _ = self.ode.solver.step(self.field, x, t, dt)
            else:
                x = self.ode(x, self.t_span, save_at=self.t_span[-1:])[-1]
        finally:
            self.field.cond = None
        return self.net.denorm_action(x)


@dataclass
class RegimeEvent:
    step: int
    kind: str  # "switch" (detected in observe), "raw" (raw planned action executed), "register"
    error: float = 0.0


class AFMRefiner(Refiner):
    """In-context action refinement with regime-switch detection (no learning at run time).

    `model` is the dynamics model the planner uses (its nominal prediction defines the planned
    transition); `codec` maps states to features/targets. `threshold` is on the RMS of the state
    error normalized by the refiner's error scale; `cooldown` control steps must pass after a
    registration before another switch may be declared (the miss's level is learned meanwhile), and a
    switch needs the miss `switch_factor` x above that level (its level follows with `level_halflife` steps).
    """

    name = "afm"

    def __init__(self, net: AFMNet, model: nn.Module, codec: Any, action_low: Tensor, action_high: Tensor,
                 threshold: float = 1.0, cooldown: int = 5, solver: str = "midpoint", steps: int = 10,
                 context_size: int | None = None, switch_factor: float = 2.0, level_halflife: float = 300.0) -> None:
        self.net = net.eval()
        self.model = model
        self.codec = codec
        self.low = torch.as_tensor(action_low, dtype=torch.float32)
        self.high = torch.as_tensor(action_high, dtype=torch.float32)
        self.threshold = float(threshold)
        self.cooldown = int(cooldown)
        self.detector = ChangeDetector(window=1, factor=switch_factor, warmup=max(1, self.cooldown),
                                       halflife=level_halflife, rise_only=True, floor=self.threshold)
        self.flow = AFMFlow(net, solver, steps)
        self.context_size = int(context_size or net.shape.context_size)
        self.events: list[RegimeEvent] = []
        self.switches = 0
        self.raw_after_switch = 0
        self.reset()

    def reset(self) -> None:
        k, c = self.context_size, self.net.shape.row_dim
        self.rows = torch.zeros(1, k, c)
        self.mask = torch.zeros(1, k, dtype=torch.bool)
        self.count = 0
        self.step = 0
        self.detector.reset()
        self.pending_raw = True  # no regime known yet: observe it with the raw action first
        self.pending_cause = "start"
        self.last_was_raw = False
        self.last_error = 0.0

    @property
    def settled(self) -> bool:
        """Registered on the current regime with a full context: right after a switch the refined robot still
        changes step by step as the context fills, which a learner of it should not chase."""
        return not self.pending_raw and self.count >= self.context_size

    # ---- acting -------------------------------------------------------------------------------
    def refine(self, state: Tensor, planned_action: Tensor) -> Tensor:
        self.step += 1
        if self.pending_raw or self.count == 0:
            self.last_was_raw = True
            self.events.append(RegimeEvent(self.step, "raw"))
            if self.pending_cause == "switch":
                self.raw_after_switch += 1
            self.pending_raw = False
            return planned_action
        self.last_was_raw = False
        return self.refine_batch(state[None], planned_action[None], self.rows, self.mask)[0]

    def refine_batch(self, states: Tensor, planned: Tensor, rows: Tensor, mask: Tensor) -> Tensor:
        """Batched refinement (B candidate actions / robots), clipped to the action box."""
        with torch.inference_mode():
            out = self.flow.transport(self.codec.features(states), rows.expand(states.shape[0], -1, -1),
                                      mask.expand(states.shape[0], -1), planned.to(torch.float32))
        return torch.max(torch.min(out, self.high), self.low)

    # ---- observing ----------------------------------------------------------------------------
    def observe(self, state: Tensor, planned_action: Tensor, executed_action: Tensor, next_state: Tensor,
                predicted_next_state: Tensor) -> None:
        """`predicted_next_state` is the planner's prediction for the planned action; the miss that may declare a
        switch is measured against this refiner's own nominal model (the one its flow was trained with), which
        is the planner's unless a learner plans."""
        with torch.inference_mode():
            realized = self.codec.targets(state, next_state)
            predicted_plan = self.model.predict(state[None], planned_action[None])[0][0]
            miss = (realized - self.codec.targets(state, predicted_plan)) / self.net.err_scale
            error = float(miss.pow(2).mean().sqrt())
            if torch.equal(executed_action, planned_action):
                predicted_exec = predicted_plan
            else:
                predicted_exec = self.model.predict(state[None], executed_action[None])[0][0]
            regime_error = realized - self.codec.targets(state, predicted_exec)
            row = torch.cat([self.codec.features(state), executed_action.to(torch.float32), regime_error])
        self.last_error = error
        if self.last_was_raw:
            self._clear()
            self._push(row)
            self.detector.reset()  # the new regime's miss level is learned from the next `cooldown` steps
            self.pending_cause = ""
            self.events.append(RegimeEvent(self.step, "register", error))
        elif self.detector.update(error):
            self.switches += 1
            self.pending_raw = True
            self.pending_cause = "switch"
            self.events.append(RegimeEvent(self.step, "switch", error))
        else:
            self._push(row)
        self.last_was_raw = False

    def _clear(self) -> None:
        self.mask.zero_()
        self.count = 0

    def _push(self, row: Tensor) -> None:
        """Append a context row; the oldest one is dropped when the window is full."""
        k = self.context_size
        if self.count < k:
            self.rows[0, self.count] = row
            self.mask[0, self.count] = True
            self.count += 1
        else:
            self.rows[0] = torch.roll(self.rows[0], -1, dims=0)
            self.rows[0, -1] = row


def from_config(node: Any, robot: Any = None, model: Any = None, seed: int = 0, net: AFMNet | None = None,
                **context: Any) -> AFMRefiner:
    """Factory for `refiner=afm`; it only loads, never simulates or trains: the network given (trained by the
    command's cache-filling step, `robocl.build.refiners.ensure_refiner`, once before building or fan-out), or
    the one cached for this nominal model. None cached: a UsageError naming the command that trains it."""
    from robocl.errors import UsageError
    from robocl.refiners.afm_cache import cache_path, load_net, missing

    if model is None or robot is None:
        raise UsageError("refiner=afm needs the robot config and the planner's dynamics model")
    if str(node.solver) not in SOLVERS:
        raise UsageError(f"refiner.solver={node.solver}: accepted {', '.join(SOLVERS)}")
    if net is None:
        path = cache_path(node, robot, model)
        if not path.exists():
            raise UsageError(missing(path, robot))
        net, _ = load_net(path)
    return AFMRefiner(net, model, model.codec, torch.as_tensor(list(robot.action_low)),
                      torch.as_tensor(list(robot.action_high)), threshold=float(node.threshold),
                      cooldown=int(node.cooldown), solver=str(node.solver), steps=int(node.steps),
                      switch_factor=float(node.get("switch_factor", 2.0)),
                      level_halflife=float(node.get("level_halflife", 300.0)))
