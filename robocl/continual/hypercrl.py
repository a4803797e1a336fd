"""HyperCRL (Huang et al. 2021): continual dynamics learning with a task-conditioned hypernetwork.

Learning task k trains the hypernetwork theta and the new embedding e_k on task k's data with
the output regularizer of von Oswald et al. 2020:

    loss = NLL_k + beta / |old| * sum_{j in old} || h(e_j, theta) - h*(e_j) ||^2

where h*(e_j) are the hypernetwork's outputs for the old embeddings, computed once when task k
begins. No old data is kept; memory grows by one embedding per task.

A hypernetwork trained by `robocl-train dynamics=hypernet` names its embeddings by regime label
(`model.task_labels`): all of them count as learned (protected by the regularizer, candidates for task
inference), and `label_tasks` maps each label to its embedding, so a labelled replay begins a trained
label's task on its trained embedding and a new label's on a new embedding (after the trained ones).

Task identity: known ids by default (task j uses embedding j). With `task_inference`, a task's
embedding is chosen from its data: the learned embedding with the lowest one-step error if that
error is below `inference_threshold`, else a new embedding. Online (`observe`), a regime change
detected from the prediction error triggers the same choice on the recent window.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor

from robocl.continual.trainable import TrainableStrategy, common_kwargs, normalizers_fitted
from robocl.dynamics.base import DynamicsModel, Transitions
from robocl.dynamics.hypernet import HyperNetwork
from robocl.errors import UsageError


class HyperCRL(TrainableStrategy):
    name = "hypercrl"

    def __init__(self, model: HyperNetwork, beta: float = 0.01, task_inference: bool = False,
                 inference_threshold: float = 0.5, inference_samples: int = 64, **kwargs: Any) -> None:
        if not isinstance(model, HyperNetwork):
            raise TypeError(f"hypercrl needs a HyperNetwork model, got {type(model).__name__}")
        super().__init__(model, **kwargs)
        self.model: HyperNetwork = model
        self.beta = float(beta)
        self.task_inference = bool(task_inference or self.detector is not None)
        self.inference_threshold = float(inference_threshold)
        self.inference_samples = int(inference_samples)
        # a pretrained hypernetwork has learned its current embedding already; one trained by robocl-train
        # on labelled data (model.task_labels) has learned one embedding per regime label
        self.learned_embeddings: list[int] = [model.current_task] if normalizers_fitted(model) else []
        # regime label -> its trained embedding: a replay that knows the labels (robocl-eval with
        # boundaries=labels) begins a known label's task on that embedding, a new label on a new one
        self.label_tasks: dict[str, int] = {}
        if normalizers_fitted(model) and model.task_labels:
            self.label_tasks = {label: i for i, label in enumerate(model.task_labels)}
            self.learned_embeddings = sorted({*self.learned_embeddings, *self.label_tasks.values()})
        self.task_map: dict[int, int] = {}
        self.target_ids: list[int] = []
        self.targets: Tensor | None = None

    # ---- what is trained and what is protected ------------------------------------------------
    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [*self.model.hnet_parameters(), self.model.task_embeddings[self.model.current_task]]

    @torch.no_grad()
    def _freeze_targets(self) -> None:
        """h*(e_j) for every learned embedding except the one being trained (computed once per task)."""
        self.target_ids = [t for t in self.learned_embeddings if t != self.model.current_task]
        self.targets = self.model.task_raw_outputs(self.target_ids) if self.target_ids else None
        self._online_opt = None

    def penalty(self) -> Tensor:
        if self.targets is None or self.beta == 0.0:
            return torch.zeros(())
        old = torch.stack([self.model.task_embeddings[t].detach() for t in self.target_ids])
        drift = self.model.raw_outputs(old) - self.targets
        return self.beta * drift.pow(2).sum() / len(self.target_ids)

    # ---- task protocol ------------------------------------------------------------------------
    def begin_task(self, task_id: int) -> None:
        super().begin_task(task_id)
        if not self.task_inference:
            emb = self.task_map.setdefault(task_id, task_id)
            if emb != self.model.current_task:
                # the online window holds the previous task's transitions: they must not train this embedding
                self.buffer.clear()
            self._use_embedding(emb)

    def _use_embedding(self, emb: int) -> None:
        self.model.set_task(emb)
        self._freeze_targets()

    def learn_task(self, data: Transitions) -> None:
        if not normalizers_fitted(self.model):
            self.model.fit_normalizers(data)
        if self.task_inference:
            emb = self.infer_embedding(data, allow_new=True)
            self.task_map[self.task_id] = emb
            self._use_embedding(emb)
        super().learn_task(data)

    def end_task(self) -> None:
        super().end_task()
        if self.model.current_task not in self.learned_embeddings:
            self.learned_embeddings.append(self.model.current_task)

    @torch.no_grad()
    def infer_embedding(self, data: Transitions, allow_new: bool, warm_start: bool = False) -> int:
        """The learned embedding that predicts `data` best, or a new one if none is good enough.

        A new embedding starts random (offline: the regularizer then separates tasks easily) or,
        with `warm_start` (online, where the first steps must already predict well), as a copy
        of the best one.
        """
        sample = data[: self.inference_samples]
        if not self.learned_embeddings:
            return self.model.current_task
        errors = self.model.task_errors(sample, self.learned_embeddings)
        best = int(torch.argmin(errors))
        if float(errors[best]) <= self.inference_threshold or not allow_new:
            return self.learned_embeddings[best]
        return self.model.add_task(init_from=self.learned_embeddings[best] if warm_start else None)

    def select_for_eval(self, task_id: int, data: Transitions | None = None) -> None:
        """Known ids: the task's embedding (an unseen task gets the latest one); else inferred."""
        if self.task_inference and data is not None and self.learned_embeddings:
            self.model.set_task(self.infer_embedding(data, allow_new=False))
        else:
            latest = self.learned_embeddings[-1] if self.learned_embeddings else self.model.current_task
            self.model.set_task(self.task_map.get(task_id, latest))

    @contextmanager
    def evaluating(self, task_id: int, data: Transitions | None = None) -> Iterator[None]:
        saved = self.model.current_task
        self.select_for_eval(task_id, data)
        try:
            yield
        finally:
            self.model.set_task(saved)

    def on_regime_change(self) -> None:
        """Online task inference: switch to the best known embedding or grow a new one."""
        if self.model.current_task not in self.learned_embeddings:
            self.learned_embeddings.append(self.model.current_task)
        trigger = self.detector.trigger if self.detector is not None else None
        window = trigger if trigger is not None and len(trigger) else self._buffer_data()[-10:]
        emb = self.infer_embedding(window, allow_new=True, warm_start=True)
        self._restart_window()
        self.task_id += 1
        self.task_map[self.task_id] = emb
        self._use_embedding(emb)

    # ---- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "learned_embeddings": list(self.learned_embeddings),
                "task_map": dict(self.task_map), "current_embedding": self.model.current_task}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.learned_embeddings = list(state.get("learned_embeddings", []))
        self.task_map = {int(k): int(v) for k, v in state.get("task_map", {}).items()}
        self._use_embedding(int(state.get("current_embedding", self.model.current_task)))


def from_config(node, model: DynamicsModel, seed: int = 0) -> HyperCRL:
    """Factory for `continual=hypercrl` (needs `dynamics=hypernet`)."""
    if not isinstance(model, HyperNetwork):
        raise UsageError(f"continual=hypercrl needs dynamics=hypernet (got a {type(model).__name__}); "
                         "accepted: dynamics=hypernet")
    return HyperCRL(model, beta=float(node.beta), task_inference=bool(node.get("task_inference", False)),
                    inference_threshold=float(node.get("inference_threshold", 0.5)),
                    **common_kwargs(node, seed))
