"""Multitask: joint training on all data seen so far (the upper bound every method is measured to).

It keeps every transition, which is exactly what a continual learner may not do; it exists to
say how good joint training can be on the whole sequence. On a task-conditioned model (the
hypernetwork, `model: hypernet`) it is given the task id, the same conditioning `hypercrl` gets:
each transition trains its own task's embedding (the mean over the tasks in a batch of each task's
NLL) and task j is evaluated on embedding j, so it is the joint-training upper bound HyperCRL is
compared against. On a plain network (`multitask_noid`, and online in robocl-run) it trains one
shared model with no task id, which must average regimes whose responses differ.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor

from robocl.continual.trainable import (
    TrainableStrategy,
    common_kwargs,
    normalizers_fitted,
    on_task_embedding,
    takes_task_id,
)
from robocl.dynamics.base import DynamicsModel, Transitions


class Multitask(TrainableStrategy):
    name = "multitask"

    def __init__(self, model: DynamicsModel, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.seen: list[Transitions] = []
        self.seen_tasks: list[int] = []  # the task id of each entry of `seen`
        self._everything: Transitions | None = None
        self.with_task_id = takes_task_id(model)
        self.name = "multitask" if self.with_task_id else "multitask_noid"

    def begin_task(self, task_id: int) -> None:
        super().begin_task(task_id)
        if self.with_task_id:
            self.model.set_task(task_id)  # its embedding (new for a new task) learns, offline and online

    def learn_task(self, data: Transitions) -> None:
        """Train on the union of all tasks so far (same epochs, so more steps as tasks accumulate)."""
        union = Transitions.concat([*self.seen, data])
        if not self.with_task_id:
            super().learn_task(union)
            self._task_data = data
            return
        if not normalizers_fitted(self.model):
            self.model.fit_normalizers(data)
        ids = torch.cat([torch.full((len(d),), t, dtype=torch.long)
                         for d, t in zip([*self.seen, data], [*self.seen_tasks, self.task_id])])
        cfg = self.train_cfg
        from robocl.continual.trainer import fit_task  # Lightning: loaded when a task is trained offline

        fit_task(self, union, cfg.epochs, cfg.batch_size, cfg.lr, seed=self.seed + 1000 * self.task_id,
                 eval_every=self.eval_every, eval_hook=self.eval_hook, extra=(ids,))
        self._task_data = data

    def training_loss(self, batch: Transitions, *extra: Tensor) -> Tensor:
        if self.with_task_id and extra:
            return self.model.multitask_loss(batch, extra[0])
        return super().training_loss(batch)

    def consolidate(self, data: Transitions) -> None:
        self.seen.append(data)
        self.seen_tasks.append(self.task_id)
        self._everything = Transitions.concat(self.seen)

    @contextmanager
    def evaluating(self, task_id: int, data: Transitions | None = None) -> Iterator[None]:
        """With task ids: task j's embedding (a task not learned yet: the latest learned one)."""
        if not self.with_task_id:
            yield
            return
        with on_task_embedding(self.model, task_id, self.seen_tasks):
            yield

    def replay(self, batch: Transitions) -> Transitions:
        """Online: mix recent transitions with an equal number drawn from everything seen."""
        if not self.online or self._everything is None:
            return batch
        idx = torch.randint(len(self._everything), (len(batch),), generator=self.generator)
        return Transitions.concat([batch, self._everything[idx]])

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "seen": [vars(d) for d in self.seen], "seen_tasks": list(self.seen_tasks)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.seen = [Transitions(**d) for d in state.get("seen", [])]
        self.seen_tasks = [int(t) for t in state.get("seen_tasks", range(len(self.seen)))]
        self._everything = Transitions.concat(self.seen) if self.seen else None


def from_config(node, model: DynamicsModel, seed: int = 0) -> Multitask:
    """Factory for `continual=multitask` (and `multitask_noid`: the same strategy on a plain network)."""
    return Multitask(model, **common_kwargs(node, seed))
