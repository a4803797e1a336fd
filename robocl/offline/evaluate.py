"""Prequential replay of recorded transitions through dynamics models, continual strategies and refiners.

Every method sees the transitions in time order. A *dynamics* method predicts first, then learns:
at transition t the model as it is then predicts s_{t+1} (one-step error) and s_{t+k} from the
recorded commands (k-step error); only then does its strategy observe (s_t, a_t, s_{t+1}). A frozen
model never learns, so its predictions are batched over chunks of the stream. A *refiner* method
is scored in hindsight: the nominal model is inverted to find the action a_p whose nominal
prediction is the transition that happened (what a planner would have planned to get there); the
recorded command is the intended action that realized it in the actual regime; the refiner's
output for (s_t, a_p) is compared with it (`action_mse`; `action_mse_identity` is the unrefined a_p).
Method `bias` (`BiasTrack`) is the non-learning adaptive reference: the frozen model plus the running
mean of its last few one-step residuals.
Errors are normalized like `dyn_mse` in `robocl-run`: squared error of the codec target divided by
the nominal model's target standard deviation, averaged over target dimensions (actions: divided by
the half-range of the action box).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from robocl.continual.base import ContinualStrategy
from robocl.continual.changepoint import detect_changes
from robocl.dynamics.base import DynamicsModel, Transitions
from robocl.offline import metrics as M
from robocl.offline.readers import AlignStats, Block, Mapping, align, blocks, transitions


def learning_block(chunk: int, learning: bool) -> int:
    """Transitions per block: learning methods go step by step, so smaller blocks keep the progress bar
    moving (methods that do not learn batch either way)."""
    return min(chunk, 256) if learning else chunk


@dataclass
class EvalSettings:
    kstep: int = 5
    kstep_stride: int = 5
    chunk: int = 2048
    pre_window: int = 20
    smooth: int = 5
    hold: int = 5
    tolerance: float = 0.2
    end_window: int = 20
    reservoir: int = 1000
    max_transitions: int | None = None
    detect_window: int = 18
    detect_factor: float = 4.0


def target_errors(model: DynamicsModel, scale: torch.Tensor, s0: torch.Tensor, pred: torch.Tensor,
                  true: torch.Tensor) -> torch.Tensor:
    codec = model.codec
    err = codec.targets(s0, pred) - codec.targets(s0, true)
    return (err / scale).pow(2).mean(-1)


def mean_target(model: DynamicsModel, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """The model's mean codec target (for an ensemble: the mixture mean, without the variance head)."""
    member_means = getattr(model, "member_means", None)
    if member_means is None:
        return model.codec.targets(states, model.predict(states, actions)[0])
    inputs = model.model_inputs(states, actions)
    mean = member_means(inputs.unsqueeze(0).expand(model.ensemble_size, *inputs.shape)).mean(0)
    return model.target_norm.denormalize(mean)


def mean_prediction(model: DynamicsModel, states: torch.Tensor, actions: torch.Tensor,
                    bias: torch.Tensor | None = None) -> torch.Tensor:
    """The model's mean next state; `bias` (codec-target space) is added to its target first (method `bias`)."""
    if bias is None and getattr(model, "member_means", None) is None:
        return model.predict(states, actions)[0]
    target = mean_target(model, states, actions)
    return model.codec.integrate(states, target if bias is None else target + bias)


def kstep_errors(model: DynamicsModel, scale: torch.Tensor, S: torch.Tensor, A: torch.Tensor, first: torch.Tensor,
                 k: int, offset: int = 0, stride: int = 1, bias: torch.Tensor | None = None) -> torch.Tensor:
    """k-step errors of the open-loop rollouts that start with the one-step predictions `first` (n, D):
    for the starts whose stream index (`offset` + i) is a multiple of `stride`, NaN elsewhere and where the
    segment ends too soon. `bias` (n, target_dim), if given, is added at every step of start i's rollout."""
    n, L = first.shape[0], A.shape[0]
    kerr = torch.full((n,), float("nan"))
    sel = torch.arange(n)
    sel = sel[((offset + sel) % stride == 0) & (sel + k <= L)]
    if len(sel):
        x = first[sel]
        b = None if bias is None else bias[sel]
        for j in range(1, k):
            x = mean_prediction(model, x, A[sel + j], b)
        kerr[sel] = target_errors(model, scale, S[sel], x, S[sel + k])
    return kerr


def rollout_errors(model: DynamicsModel, scale: torch.Tensor, S: torch.Tensor, A: torch.Tensor, n: int,
                   k: int, offset: int = 0, stride: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """One-step errors for starts 0..n-1, and k-step errors for the starts whose stream index
    (`offset` + i) is a multiple of `stride` (NaN elsewhere, and where the segment ends too soon).

    S: (L+1, D) states, A: (L, A) actions of one contiguous segment, L >= n.
    """
    with torch.inference_mode():
        first = mean_prediction(model, S[:n], A[:n])
        one = target_errors(model, scale, S[:n], first, S[1:n + 1])
        if k == 1:
            return one, one.clone()
        return one, kstep_errors(model, scale, S, A, first, k, offset, stride)


@contextmanager
def single_thread():
    """Step-by-step learning works on batches of one to a few dozen: a second torch thread only adds
    synchronization (on a busy 2-core machine, 25x slower), so learning methods run on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@dataclass
class Track:
    """One method's state and per-transition error series over an episode."""

    name: str
    kind: str  # dynamics | refiner
    learning: bool
    # adapts its predictions online without learning weights (method `bias`): never the change-detection reference
    adaptive: ClassVar[bool] = False
    errors: list[np.ndarray] = field(default_factory=list)
    kerrors: list[np.ndarray] = field(default_factory=list)
    base_errors: list[np.ndarray] = field(default_factory=list)  # refiner: identity (unrefined) error
    seconds: float = 0.0
    count: int = 0
    rng_state: torch.Tensor | None = None

    def series(self) -> np.ndarray:
        return np.concatenate(self.errors) if self.errors else np.zeros(0)

    def kseries(self) -> np.ndarray:
        return np.concatenate(self.kerrors) if self.kerrors else np.zeros(0)


class DynamicsTrack(Track):
    def __init__(self, name: str, model: DynamicsModel, strategy: ContinualStrategy, scale: torch.Tensor,
                 kstep: int, stride: int = 1, boundaries: bool = False) -> None:
        learning = type(strategy) is not ContinualStrategy
        super().__init__(name, "dynamics", learning)
        self.model, self.strategy, self.scale, self.k, self.stride = model, strategy, scale, kstep, stride
        self.boundaries = boundaries
        self.label: str | None = None
        # labels the strategy's model was trained on (hypercrl on a robocl-train dynamics=hypernet model) keep
        # their trained task ids; new labels get the next ones
        self.task_ids: dict[str, int] = dict(getattr(strategy, "label_tasks", {}))

    def _boundary(self, label: str | None) -> None:
        """Task-aware learning: a new regime label ends the current task and begins the label's task
        (a label seen before gets its earlier task id back), before its first transition is predicted.
        The first label begins its task only if that is not the one the strategy is on (a trained label's)."""
        if label is None or label == self.label:
            return
        task = self.task_ids.setdefault(label, len(self.task_ids))
        if self.label is not None:
            self.strategy.end_task()
            self.strategy.begin_task(task)
        elif task != self.strategy.task_id:
            self.strategy.begin_task(task)
        self.label = label

    def process(self, block: Block, S: torch.Tensor, A: torch.Tensor) -> None:
        t0 = time.perf_counter()
        n = block.n
        if not self.learning:
            one, kerr = rollout_errors(self.model, self.scale, S, A, n, self.k, block.start, self.stride)
        else:
            one = torch.empty(n)
            kerr = torch.empty(n)
            with single_thread():
                self._learn(block, S, A, n, one, kerr)
        self.errors.append(one.numpy().astype(np.float64))
        self.kerrors.append(kerr.numpy().astype(np.float64))
        self.seconds += time.perf_counter() - t0
        self.count += n

    def _learn(self, block: Block, S: torch.Tensor, A: torch.Tensor, n: int, one: torch.Tensor,
               kerr: torch.Tensor) -> None:
        for i in range(n):
            if self.boundaries:
                self._boundary(block.regimes[i])
            o, ke = rollout_errors(self.model, self.scale, S[i:], A[i:], 1, self.k, block.start + i, self.stride)
            one[i], kerr[i] = o[0], ke[0]
            self.strategy.observe(Transitions(S[i:i + 1], A[i:i + 1], S[i + 1:i + 2]))

    def final_errors(self, S: np.ndarray, A: np.ndarray, S2: np.ndarray) -> float:
        s, a, s2 = (torch.as_tensor(x, dtype=torch.float32) for x in (S, A, S2))
        with torch.inference_mode():
            pred = self.model.predict(s, a)[0]
            return float(target_errors(self.model, self.scale, s, pred, s2).mean())


def running_bias(history: torch.Tensor, residuals: torch.Tensor, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Prequential running mean: bias[i] is the mean of the `window` residuals before residuals[i] (the
    carried `history` first, then residuals[:i]; fewer at a segment's start, zero with none), from one
    cumulative sum. Returns (bias (n, D), the new history: the last `window` residuals)."""
    full = torch.cat([history.to(residuals.dtype), residuals])
    csum = torch.cat([full.new_zeros(1, full.shape[1], dtype=torch.float64), full.double().cumsum(0)])
    p = torch.arange(history.shape[0], full.shape[0])
    lo = (p - window).clamp_min(0)
    bias = (csum[p] - csum[lo]) / (p - lo).clamp_min(1).unsqueeze(-1)
    return bias.to(residuals.dtype), full[-window:]


class BiasTrack(DynamicsTrack):
    """Method `bias`: the frozen nominal model plus the running mean of its own last `window` one-step
    residuals (true minus predicted codec target), added to every predicted target, at every step of the
    k-step rollout too: the disturbance estimate adaptive flight controllers use, as a reference for what
    learning must beat. It adapts but learns no weights, so it is batched over a block; the window is
    carried across the blocks of a segment and emptied at a segment break (bias_t uses t-window..t-1 only).
    """

    adaptive = True

    def __init__(self, name: str, model: DynamicsModel, scale: torch.Tensor, kstep: int, stride: int = 1,
                 window: int = 10) -> None:
        super().__init__(name, model, ContinualStrategy(model), scale, kstep, stride)
        self.window = int(window)
        self.history = torch.zeros(0, model.codec.target_dim)
        self.segment: int | None = None

    def process(self, block: Block, S: torch.Tensor, A: torch.Tensor) -> None:
        t0 = time.perf_counter()
        n = block.n
        if block.segment != self.segment:  # a break in the stream: the old residuals say nothing here
            self.history = self.history[:0]
            self.segment = block.segment
        codec = self.model.codec
        with torch.inference_mode():
            raw = mean_target(self.model, S[:n], A[:n])
            bias, self.history = running_bias(self.history, codec.targets(S[:n], S[1:n + 1]) - raw, self.window)
            first = codec.integrate(S[:n], raw + bias)
            one = target_errors(self.model, self.scale, S[:n], first, S[1:n + 1])
            kerr = one.clone() if self.k == 1 else kstep_errors(self.model, self.scale, S, A, first, self.k,
                                                                  block.start, self.stride, bias)
        self.errors.append(one.numpy().astype(np.float64))
        self.kerrors.append(kerr.numpy().astype(np.float64))
        self.seconds += time.perf_counter() - t0
        self.count += n

    def current_bias(self) -> torch.Tensor:
        """The bias the next prediction would use (zero before any residual)."""
        if not len(self.history):
            return torch.zeros(self.model.codec.target_dim)
        return self.history[-self.window:].mean(0)

    def final_errors(self, S: np.ndarray, A: np.ndarray, S2: np.ndarray) -> float:
        """The predictor as it stands at the end (model + its final bias) on earlier data, for forgetting."""
        s, a, s2 = (torch.as_tensor(x, dtype=torch.float32) for x in (S, A, S2))
        with torch.inference_mode():
            pred = mean_prediction(self.model, s, a, self.current_bias())
            return float(target_errors(self.model, self.scale, s, pred, s2).mean())


def invert_actions(model: DynamicsModel, scale: torch.Tensor, S: torch.Tensor, S2: torch.Tensor, A0: torch.Tensor,
                   low: torch.Tensor, high: torch.Tensor, iters: int = 40, lr: float = 0.1) -> torch.Tensor:
    """Actions in the box whose nominal one-step prediction from S best matches S2 (batched Adam)."""
    center, half = (high + low) / 2, (high - low) / 2
    z = ((A0.clamp(low, high) - center) / half).clamp(-0.999, 0.999).atanh().detach().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        with torch.enable_grad():
            target = model.codec.targets(S, S2)
            for _ in range(iters):
                a = center + half * torch.tanh(z)
                pred = model.predict(S, a)[0]
                loss = ((model.codec.targets(S, pred) - target) / scale).pow(2).sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    finally:
        for p in params:
            p.requires_grad_(True)
    return (center + half * torch.tanh(z)).detach()


class RefinerTrack(Track):
    def __init__(self, name: str, refiner: Any, nominal: DynamicsModel, scale: torch.Tensor,
                 low: torch.Tensor, high: torch.Tensor) -> None:
        super().__init__(name, "refiner", True)
        self.refiner, self.nominal, self.scale, self.low, self.high = refiner, nominal, scale, low, high
        self.half = (high - low) / 2
        self.refiner.reset()

    def process(self, block: Block, S: torch.Tensor, A: torch.Tensor) -> None:
        t0 = time.perf_counter()
        n = block.n
        planned = invert_actions(self.nominal, self.scale, S[:n], S[1:n + 1], A[:n], self.low, self.high)
        with torch.inference_mode():
            predicted = self.nominal.predict(S[:n], planned)[0]
        refined_err = np.empty(n)
        identity_err = np.empty(n)
        with single_thread():
            self._refine(S, A, n, planned, predicted, refined_err, identity_err)
        self.errors.append(refined_err)
        self.base_errors.append(identity_err)
        self.seconds += time.perf_counter() - t0
        self.count += n

    def _refine(self, S: torch.Tensor, A: torch.Tensor, n: int, planned: torch.Tensor, predicted: torch.Tensor,
                refined_err: np.ndarray, identity_err: np.ndarray) -> None:
        for i in range(n):
            with torch.inference_mode():
                refined = self.refiner.refine(S[i], planned[i])
            refined_err[i] = float(((refined - A[i]) / self.half).pow(2).mean())
            identity_err[i] = float(((planned[i] - A[i]) / self.half).pow(2).mean())
            self.refiner.observe(S[i], planned[i], A[i], S[i + 1], predicted[i])


@dataclass
class EpisodeResult:
    name: str
    times: np.ndarray  # (N,) s since the first transition
    regimes: list[str | None]
    changes: list[M.Change]
    rows: list[dict[str, Any]]
    notes: list[str]
    stats: dict[str, Any]
    series: dict[str, np.ndarray]


def evaluate_episode(events, mapping: Mapping, tracks: list[Track], settings: EvalSettings, name: str,
                     seed: int = 0, on_block: Callable[[int, dict[str, float]], None] | None = None) -> EpisodeResult:
    """Stream one episode's transitions through every track; metrics per track."""
    stats = AlignStats()
    ticks = align(events, mapping, stats)
    reservoir = M.Reservoir(settings.reservoir, seed)
    bucket_reservoir = M.Reservoir(max(16, settings.reservoir // 10), seed + 1)
    labels: list[str | None] = []
    times: list[np.ndarray] = []
    wall0 = time.perf_counter()
    total = 0
    chunk = learning_block(settings.chunk, any(t.learning for t in tracks))
    for block in blocks(transitions(ticks), chunk, settings.kstep - 1, settings.max_transitions):
        S = torch.as_tensor(block.states, dtype=torch.float32)
        A = torch.as_tensor(block.actions, dtype=torch.float32)
        for track in tracks:
            # Each method draws from its own random stream (ensemble bootstraps use the global one), so
            # its numbers do not depend on which other methods run beside it or on the block size.
            if track.rng_state is None:
                track.rng_state = torch.Generator().manual_seed(seed).get_state()
            torch.set_rng_state(track.rng_state)
            track.process(block, S, A)
            track.rng_state = torch.get_rng_state()
        n = block.n
        for i in range(n):
            idx = block.start + i
            item = (idx, block.states[i], block.actions[i], block.states[i + 1])
            if block.regimes[i] is not None:
                reservoir.add(block.regimes[i], item)
            else:
                bucket_reservoir.add(str(idx // 1000), item)
        labels.extend(block.regimes[:n])
        times.append(block.times[:n])
        total += n
        if on_block is not None:
            on_block(total, {t.name: t.count / t.seconds for t in tracks if t.seconds > 0})
    wall = time.perf_counter() - wall0
    t_ns = np.concatenate(times) if times else np.zeros(0, dtype=np.int64)
    t_s = (t_ns - t_ns[0]) / 1e9 if len(t_ns) else np.zeros(0)
    notes: list[str] = []
    if total < 2:
        from robocl.offline.readers import DataError

        raise DataError(f"data episode {name}: fewer than 2 usable transitions after alignment "
                        f"(period {mapping.period} s; {stats.missing_state} ticks without a state, "
                        f"{stats.missing_command} without a command)")
    has_labels = any(label is not None for label in labels)
    reference = next((t for t in tracks if t.kind == "dynamics" and not t.learning and not t.adaptive), None) or \
        next((t for t in tracks if t.kind == "dynamics"), None) or tracks[0]
    if has_labels:
        changes = M.label_changes(labels)
        regime_of = [label if label is not None else "unlabeled" for label in labels]
    else:
        ref = reference.series() if reference.kind == "dynamics" else np.concatenate(reference.base_errors)
        points = detect_changes(ref, settings.detect_window, settings.detect_factor,
                                warmup=max(50, settings.detect_window))
        names = [f"segment{j + 1}" for j in range(len(points) + 1)]
        changes = [M.Change(p, names[j], names[j + 1]) for j, p in enumerate(points)]
        bounds = [0, *points, total]
        regime_of = [None] * total
        for j in range(len(points) + 1):
            regime_of[bounds[j]:bounds[j + 1]] = [names[j]] * (bounds[j + 1] - bounds[j])
        notes.append(f"{name}: no regime labels; {len(points)} change(s) detected from {reference.name}'s "
                     f"error (its median over {settings.detect_window} steps leaving its own level by more "
                     f"than x{settings.detect_factor:g}; robocl.continual.changepoint)")
    # Data per regime for forgetting: the per-label reservoir, or the time-bucket one mapped to segments.
    by: dict[str, list] = {}
    for res in (reservoir, bucket_reservoir):
        for key in res.keys():
            for item in res.items[key]:
                by.setdefault(regime_of[item[0]], []).append(item)
    per_regime = {r: tuple(np.stack([it[j] for it in items]) for j in (1, 2, 3)) for r, items in by.items()}
    last_regime = regime_of[-1]
    # The last segment of each regime: [start, end) indices, for the end-of-regime error.
    last_segment: dict[str, tuple[int, int]] = {}
    start = 0
    for i in range(1, total + 1):
        if i == total or regime_of[i] != regime_of[start]:
            last_segment[regime_of[start]] = (start, i)
            start = i
    rows_out: list[dict[str, Any]] = []
    series: dict[str, np.ndarray] = {}
    change_ends = [c.index for c in changes[1:]] + [total]
    for track in tracks:
        e = track.series()
        series[track.name] = e
        row: dict[str, Any] = {"method": track.name, "seed": seed, "task": name, "transitions": int(total),
                               "learning": track.learning, "adaptive": track.learning or track.adaptive}
        if isinstance(track, BiasTrack):
            row["bias_window"] = track.window
        err_key = "dyn_mse" if track.kind == "dynamics" else "action_mse"
        post_key = "post_change_mse" if track.kind == "dynamics" else "post_change_action_mse"
        row[err_key] = float(np.mean(e))
        if track.kind == "dynamics":
            ke = track.kseries()
            row["kstep_mse"] = float(np.nanmean(ke)) if np.isfinite(ke).any() else None
            row["kstep"] = settings.kstep
            row["kstep_stride"] = settings.kstep_stride
            row["task_boundaries"] = bool(getattr(track, "boundaries", False)) and has_labels and track.learning
        else:
            base = np.concatenate(track.base_errors)
            series[track.name + ":identity"] = base
            row["action_mse_identity"] = float(np.mean(base))
        by_regime: dict[str, float] = {}
        for r in dict.fromkeys(regime_of):
            mask = np.array([x == r for x in regime_of])
            by_regime[r] = float(np.mean(e[mask]))
        row[f"{err_key}_by_regime"] = by_regime
        per_change = []
        for j, (c, end) in enumerate(zip(changes, change_ends), start=1):
            prev = changes[j - 2].index if j > 1 else 0
            tta, level = M.time_to_adapt(e, c.index, end, settings.pre_window, settings.smooth, settings.tolerance,
                                          settings.hold, start=prev)
            post = float(np.mean(e[c.index:end])) if end > c.index else None
            per_change.append({"change": j, "index": c.index, "t_s": float(t_s[c.index]), "before": c.before,
                               "after": c.after, "pre_mse": level, "post_mse": post, "time_to_adapt_steps": tta,
                               "time_to_adapt_s": tta * mapping.period if tta is not None else None})
            row[f"{post_key}_c{j}"] = post
            row[f"time_to_adapt_steps_c{j}"] = tta
            if tta is None:
                notes.append(f"{track.name} {name}: change {j} ({c.before} -> {c.after}) at step {c.index}: "
                             f"error never came back within {settings.tolerance:.0%} of the pre-change level in "
                             f"{end - c.index} steps; time_to_adapt_steps_c{j} is null")
        row["changes"] = per_change
        adapted = [c["time_to_adapt_steps"] for c in per_change if c["time_to_adapt_steps"] is not None]
        row["changes_adapted"] = len(adapted)
        row["changes_total"] = len(per_change)
        row["time_to_adapt_steps"] = float(np.mean(adapted)) if adapted else None
        posts = [c["post_mse"] for c in per_change if c["post_mse"] is not None]
        row[post_key] = float(np.mean(posts)) if posts else None
        if track.kind == "dynamics":
            final = {r: track.final_errors(*d) for r, d in per_regime.items() if len(d[0])}
            end_err = {r: float(np.mean(e[max(a, b - settings.end_window):b])) for r, (a, b) in last_segment.items()}
            row["final_mse_by_regime"] = final
            row["forgetting_mse"] = M.forgetting(final, end_err, last_regime)
            if row["forgetting_mse"] is None:
                notes.append(f"{track.name} {name}: forgetting_mse is null: no earlier regime to measure it on")
        row["transitions_per_s"] = track.count / track.seconds if track.seconds > 0 else None
        row["eval_s"] = track.seconds
        rows_out.append(row)
    spent = sum(t.seconds for t in tracks)
    stats_out = {"ticks": stats.ticks, "ticks_without_state": stats.missing_state,
                 "ticks_without_command": stats.missing_command, "out_of_order_messages": stats.out_of_order,
                 "transitions": int(total), "wall_s": wall,
                 "read_align_s": max(0.0, wall - spent),
                 "read_transitions_per_s": total / max(1e-9, wall - spent)}
    return EpisodeResult(name, t_s, labels, changes, rows_out, notes, stats_out, series)


def make_dynamics_track(name: str, base_model: DynamicsModel, strategy_factory: Callable | None,
                        kstep: int, seed: int, stride: int = 1, boundaries: bool = False,
                        scale: torch.Tensor | None = None) -> DynamicsTrack:
    """`scale`: the target std errors are divided by (default the model's own); another model's scale puts
    two models' errors on one scale (robocl-eval's `sim` beside a `model=PATH` nominal model)."""
    model = copy.deepcopy(base_model).eval()
    strategy = strategy_factory(model, seed) if strategy_factory is not None else ContinualStrategy(model)
    scale = base_model.target_norm.std if scale is None else scale
    return DynamicsTrack(name, model, strategy, scale.detach().clone(), kstep, stride, boundaries)


def make_bias_track(name: str, base_model: DynamicsModel, kstep: int, window: int, stride: int = 1) -> BiasTrack:
    """Method `bias` over a private copy of the nominal model (never trained)."""
    model = copy.deepcopy(base_model).eval()
    return BiasTrack(name, model, base_model.target_norm.std.detach().clone(), kstep, stride, window)
