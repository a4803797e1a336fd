"""What every learning continual strategy shares: offline task training and online updates.

A strategy is defined by three hooks on top of the model's own loss: `replay` (what else goes
into a batch: coreset or all past data), `penalty` (a regularizer toward the past: EWC, SI,
L2, the hypernetwork output regularizer) and `after_step` (bookkeeping after each optimizer
step). The same `training_loss` drives the Lightning task loop (`learn_task`) and the few
online steps per control step (`observe`), so `continual=<name>` works with `mppi_online`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from robocl.continual.base import ContinualStrategy
from robocl.continual.detect import RegimeDetector
from robocl.continual.online import RecentBuffer
from robocl.dynamics.base import DynamicsModel, Transitions

if TYPE_CHECKING:  # the trainer (and Lightning) is imported only when offline training runs
    from robocl.continual.trainer import EvalHook


@dataclass
class TrainConfig:
    """Offline (per task) and online (per control step) training settings."""

    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    online_lr: float = 1e-3
    steps_per_transition: int = 3
    online_batch_size: int = 32
    capacity: int = 64
    warmup: int = 4

    @classmethod
    def from_node(cls, node: Any) -> TrainConfig:
        kw = {}
        for f in fields(cls):
            value = node.get(f.name) if node is not None else None
            if value is not None:
                kw[f.name] = type(f.default)(value)
        return cls(**kw)


def normalizers_fitted(model: DynamicsModel) -> bool:
    """False while the normalizers still hold their identity initialization."""
    n = model.input_norm
    return not (bool((n.mean == 0).all()) and bool((n.std == 1).all()))


class TrainableStrategy(ContinualStrategy):
    """Plain fine-tuning; subclasses add replay, penalties and consolidation."""

    name = "finetune"

    def __init__(self, model: DynamicsModel, train: TrainConfig | None = None, seed: int = 0,
                 detector: RegimeDetector | None = None) -> None:
        super().__init__(model)
        self.train_cfg = train or TrainConfig()
        self.seed = seed
        self.iteration = 0  # optimizer steps over the strategy's life (offline + online)
        self.eval_every = 0
        self.eval_hook: EvalHook | None = None
        codec = model.codec
        self.buffer = RecentBuffer(self.train_cfg.capacity, codec.state_dim, codec.action_dim)
        self.generator = torch.Generator().manual_seed(seed)
        self.detector = detector
        self.learned_tasks: list[int] = []
        self._task_data: Transitions | None = None
        self._online_opt: torch.optim.Optimizer | None = None
        self.online = False  # True while `observe` takes its optimizer steps

    # ---- hooks ------------------------------------------------------------------------------
    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def replay(self, batch: Transitions) -> Transitions:
        """The batch actually trained on (default: the current task's batch only)."""
        return batch

    def penalty(self) -> Tensor:
        """Regularizer toward what earlier tasks need (default: none)."""
        return torch.zeros(())

    def after_step(self) -> None:
        """Called after every optimizer step (offline and online)."""

    def consolidate(self, data: Transitions) -> None:
        """Store what the finished task's penalty/replay needs (its data is dropped afterwards)."""

    def training_loss(self, batch: Transitions, *extra: Tensor) -> Tensor:
        return self.model.loss(self.replay(batch)) + self.penalty()

    # ---- task protocol ------------------------------------------------------------------------
    def set_evaluation(self, every: int, hook: EvalHook | None) -> None:
        """Continual evaluation: call `hook(iteration)` every `every` optimizer steps."""
        self.eval_every, self.eval_hook = int(every), hook

    def begin_task(self, task_id: int) -> None:
        super().begin_task(task_id)
        self._online_opt = None

    def learn_task(self, data: Transitions) -> None:
        if not normalizers_fitted(self.model):
            self.model.fit_normalizers(data)
        self._task_data = data
        cfg = self.train_cfg
        from robocl.continual.trainer import fit_task  # Lightning: loaded when a task is trained offline

        fit_task(self, data, cfg.epochs, cfg.batch_size, cfg.lr, seed=self.seed + 1000 * self.task_id,
                 eval_every=self.eval_every, eval_hook=self.eval_hook)

    def end_task(self) -> None:
        data = self._task_data if self._task_data is not None else self._buffer_data()
        if len(data):
            self.consolidate(data)
        if self.task_id not in self.learned_tasks:
            self.learned_tasks.append(self.task_id)
        self._task_data = None

    def select_for_eval(self, task_id: int, data: Transitions | None = None) -> None:
        """Point the model at a task before it is evaluated (multi-head models only)."""

    @contextmanager
    def evaluating(self, task_id: int, data: Transitions | None = None) -> Iterator[None]:
        """`select_for_eval` for the duration of the block, then back to the task being learned."""
        yield

    # ---- online ------------------------------------------------------------------------------
    def _buffer_data(self) -> Transitions:
        n = self.buffer.size
        return Transitions(self.buffer.states[:n], self.buffer.actions[:n], self.buffer.next_states[:n])

    def _online_optimizer(self) -> torch.optim.Optimizer:
        if self._online_opt is None:
            self._online_opt = torch.optim.Adam(self.trainable_parameters(), lr=self.train_cfg.online_lr)
        return self._online_opt

    def observe(self, transition: Transitions) -> None:
        self.buffer.add(transition)
        if self.detector is not None and normalizers_fitted(self.model):
            if self.detector.update(self.model, transition):
                self.on_regime_change()
        cfg = self.train_cfg
        if self.buffer.size < cfg.warmup or cfg.steps_per_transition < 1:
            return
        opt = self._online_optimizer()
        self.model.train()
        self.online = True
        with torch.enable_grad():
            for _ in range(cfg.steps_per_transition):
                loss = self.training_loss(self.buffer.sample(cfg.online_batch_size, self.generator))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                self.after_step()
                self.iteration += 1
        self.online = False
        self.model.eval()

    def on_regime_change(self) -> None:
        """Task inference for single-head strategies: consolidate the old regime, start a new task
        whose online window holds only the transitions that triggered the switch."""
        self.end_task()
        self._restart_window()
        self.begin_task(self.task_id + 1)

    def _restart_window(self) -> None:
        self.buffer.clear()
        if self.detector is not None and self.detector.trigger is not None:
            self.buffer.add(self.detector.trigger)

    # ---- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "iteration": self.iteration, "learned_tasks": list(self.learned_tasks)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.iteration = int(state.get("iteration", 0))
        self.learned_tasks = list(state.get("learned_tasks", []))


def keep_share(per_task: dict[int, Transitions], task_id: int, data: Transitions, size: int,
               generator: torch.Generator) -> dict[int, Transitions]:
    """A fixed-size replay memory split evenly over the tasks: task `task_id` keeps a random share of `data`,
    and every older task gives up samples to make room (coreset, kfpf), so memory never grows."""
    tasks = sorted(set(per_task) | {task_id})
    quota = max(1, size // len(tasks))
    pick = torch.randperm(len(data), generator=generator)[:quota]
    per_task = {**per_task, task_id: data[pick]}
    return {t: d[:quota] for t, d in per_task.items()}


def takes_task_id(model: DynamicsModel) -> bool:
    """A task-conditioned model (the hypernetwork: one embedding per task) that joint training over tasks can
    give each transition's task id (`multitask_loss`) and point at a task (`set_task`)."""
    return hasattr(model, "multitask_loss") and hasattr(model, "set_task")


@contextmanager
def on_task_embedding(model: DynamicsModel, task_id: int, known: list[int]) -> Iterator[None]:
    """Evaluate task `task_id` on its embedding (a task not learned yet: the latest of `known`), then point the
    model back at the task being learned."""
    saved = model.current_task
    model.set_task(task_id if task_id in known or task_id == saved else (known[-1] if known else saved))
    try:
        yield
    finally:
        model.set_task(saved)


def snapshot(params: list[torch.nn.Parameter]) -> list[Tensor]:
    return [p.detach().clone() for p in params]


def common_kwargs(node: Any, seed: int) -> dict[str, Any]:
    """TrainConfig, seed and (with `task_inference: true`) a RegimeDetector from a config node."""
    detector = None
    if node is not None and bool(node.get("task_inference", False)):
        detector = RegimeDetector(threshold=float(node.get("inference_threshold", 0.5)),
                                  window=int(node.get("inference_window", 10)))
    return {"train": TrainConfig.from_node(node), "seed": seed, "detector": detector}
