"""k-FPF (Zhao et al. 2023, "Does continual learning equally forget all parameters?"): plain fine-tuning,
and every `every` optimizer steps a few steps of fine-tuning of only the most task-sensitive parameters on
a small buffer.

Forgetting concentrates in a few parameters; the paper fine-tunes just those, periodically, on a small
replay buffer, which costs a fraction of replaying into every batch. Here the sensitive layers are
measured, not assumed: when a task ends, each layer's relative weight drift over that task
(||W_end - W_start|| / ||W_start||; a layer = a weight matrix and the vectors registered after it, its
bias) ranks them, and the top `sensitive` layers are the ones fine-tuned afterwards (before the first
task ends: the output layer). The buffer holds `size` transitions split evenly over the finished tasks,
and each FPF batch mixes them with as many of the current task's.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from robocl.continual.trainable import TrainableStrategy, common_kwargs, keep_share
from robocl.dynamics.base import DynamicsModel, Transitions


def layers_of(model: DynamicsModel) -> dict[str, list[str]]:
    """The model's layers in registration order: each weight (a tensor of 2 or more dimensions, not named
    `bias`) with the tensors registered after it that are not (its bias, a vector), named by the weight."""
    layers: dict[str, list[str]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if not layers or (p.dim() >= 2 and not name.endswith("bias")):
            layers[name] = [name]
        else:
            layers[next(reversed(layers))].append(name)
    return layers


class KFPF(TrainableStrategy):
    name = "kfpf"

    def __init__(self, model: DynamicsModel, size: int = 200, every: int = 50, fpf_steps: int = 10,
                 fpf_lr: float = 1e-3, sensitive: int = 1, fpf_batch_size: int = 64, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        if size < 1 or every < 1 or fpf_steps < 1 or sensitive < 1 or fpf_batch_size < 2:
            raise ValueError("kfpf: size, every, fpf_steps, sensitive >= 1 and fpf_batch_size >= 2 are required")
        self.size, self.every, self.fpf_steps = int(size), int(every), int(fpf_steps)
        self.fpf_lr, self.fpf_batch_size = float(fpf_lr), int(fpf_batch_size)
        self.layers = layers_of(model)
        self.n_sensitive = min(int(sensitive), len(self.layers))
        self.sensitive: list[str] = list(self.layers)[-self.n_sensitive:]  # the output layer until a task ends
        self.drift: dict[str, float] = {}  # per layer (named by its weight)
        self.per_task: dict[int, Transitions] = {}
        self.memory: Transitions | None = None
        self._start: dict[str, Tensor] | None = None
        self.fpf_phases = 0

    def begin_task(self, task_id: int) -> None:
        super().begin_task(task_id)
        named = dict(self.model.named_parameters())
        self._start = {n: named[n].detach().clone() for n in self.layers}  # each layer's weight: its drift

    def consolidate(self, data: Transitions) -> None:
        """Keep the finished task's share of the buffer, and rank the parameters by their drift over it."""
        self.per_task = keep_share(self.per_task, self.task_id, data, self.size, self.generator)
        self.memory = Transitions.concat(list(self.per_task.values()))
        if self._start is not None:
            named = dict(self.model.named_parameters())
            self.drift = {n: float((named[n].detach() - self._start[n]).norm() / (self._start[n].norm() + 1e-8))
                          for n in self.layers}
            self.sensitive = sorted(self.drift, key=self.drift.get, reverse=True)[:self.n_sensitive]

    def after_step(self) -> None:
        if self.memory is not None and (self.iteration + 1) % self.every == 0:
            self._fine_tune_sensitive()

    def _current(self) -> Transitions | None:
        data = self._task_data if self._task_data is not None else self._buffer_data()
        return data if len(data) else None

    def _fine_tune_sensitive(self) -> None:
        named = dict(self.model.named_parameters())
        params = [named[n] for layer in self.sensitive for n in self.layers[layer]]
        opt = torch.optim.Adam(params, lr=self.fpf_lr)
        current = self._current()
        half = self.fpf_batch_size // 2
        with torch.enable_grad():
            for _ in range(self.fpf_steps):
                parts = [self.memory[torch.randint(len(self.memory), (half,), generator=self.generator)]]
                if current is not None:
                    parts.append(current[torch.randint(len(current), (half,), generator=self.generator)])
                loss = self.model.loss(Transitions.concat(parts))
                grads = torch.autograd.grad(loss, params)  # only these: the main optimizer's grads stay untouched
                for p, g in zip(params, grads):
                    p.grad = g
                opt.step()
                for p in params:
                    p.grad = None
        self.fpf_phases += 1

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "per_task": {t: vars(d) for t, d in self.per_task.items()},
                "sensitive": list(self.sensitive), "drift": dict(self.drift), "fpf_phases": self.fpf_phases}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.per_task = {int(t): Transitions(**d) for t, d in state.get("per_task", {}).items()}
        self.memory = Transitions.concat(list(self.per_task.values())) if self.per_task else None
        self.sensitive = list(state.get("sensitive", self.sensitive))
        self.drift = dict(state.get("drift", {}))
        self.fpf_phases = int(state.get("fpf_phases", 0))


def from_config(node, model: DynamicsModel, seed: int = 0) -> KFPF:
    """Factory for `continual=kfpf`."""
    return KFPF(model, size=int(node.size), every=int(node.every), fpf_steps=int(node.fpf_steps),
                fpf_lr=float(node.fpf_lr), sensitive=int(node.sensitive), fpf_batch_size=int(node.fpf_batch_size),
                **common_kwargs(node, seed))
