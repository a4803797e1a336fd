"""Task-conditioned chunked hypernetwork that generates a Gaussian MLP's weights (HyperCRL).

von Oswald et al. 2020: a small network h(e_task, c_chunk; theta) emits the target network's
weights one chunk at a time; the chunk embeddings c are shared, so the hypernetwork is much
smaller than a network per task. Learning task k adds one embedding e_k; continual learning
comes from an output regularizer on the old embeddings (see robocl.continual.hypercrl).

Design choices:
- The target is one Gaussian MLP (`robocl.dynamics.mlp`), not an ensemble: an ensemble would
  need E embeddings per task and break the one-embedding-per-task memory budget.
- Generated weights are `offset + scale * h(...)` with a fixed per-element (offset, scale) from
  the target's usual initialization, so h works in unit scale whatever the layer fan-in; the
  regularizer acts on h's raw output.
- Planning never runs the hypernetwork: weights are generated once per task and cached; the cache
  key holds the version counters of every hypernetwork parameter, so an optimizer step or a
  `load_state_dict` invalidates it without anyone having to remember to.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robocl.dynamics.base import DynamicsModel, Transitions
from robocl.dynamics.mlp import TargetSpec, gaussian_mlp_forward, gaussian_mlp_mean, gaussian_nll
from robocl.robots.codec import StateCodec


class HyperNetwork(DynamicsModel):
    """A DynamicsModel whose Gaussian MLP weights are generated from the current task's embedding."""

    def __init__(
        self,
        codec: StateCodec,
        hidden_size: int = 200,
        hidden_layers: int = 3,
        embedding_dim: int = 8,
        chunk_size: int = 4000,
        chunk_embedding_dim: int = 8,
        hnet_hidden: Sequence[int] = (100, 100),
        seed: int | None = None,
    ) -> None:
        super().__init__(codec)
        if min(hidden_size, hidden_layers, embedding_dim, chunk_size, chunk_embedding_dim) < 1:
            raise ValueError("hypernetwork sizes must be >= 1")
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        self.spec = TargetSpec(codec.feature_dim + codec.action_dim, codec.target_dim, hidden_size, hidden_layers)
        self.chunk_size = chunk_size
        self.num_chunks = math.ceil(self.spec.numel / chunk_size)
        self.embedding_dim = embedding_dim
        offset, scale = self.spec.init_offset_scale()
        self.register_buffer("offset", offset)
        self.register_buffer("scale", scale)
        self.chunk_embeddings = nn.Parameter(torch.randn(self.num_chunks, chunk_embedding_dim, generator=gen))
        self.task_embeddings = nn.ParameterList()
        dims = [embedding_dim + chunk_embedding_dim, *[int(h) for h in hnet_hidden], chunk_size]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        for layer in self.layers:
            bound = 1.0 / math.sqrt(layer.in_features)
            with torch.no_grad():
                layer.weight.uniform_(-bound, bound, generator=gen)
                layer.bias.uniform_(-bound, bound, generator=gen)
        self._gen = gen
        self.current_task = 0
        # what each embedding stands for when trained on labelled data (robocl-train: embedding i = label i)
        self.task_labels: list[str] = []
        self.add_task()
        self._calibrate_output_scale()
        self._cache: dict[int, tuple[tuple[int, ...], list[Tensor]]] = {}

    # ---- tasks --------------------------------------------------------------------------------
    @property
    def num_tasks(self) -> int:
        return len(self.task_embeddings)

    def add_task(self, init_from: int | None = None) -> int:
        """Append one task embedding (random, or a copy of `init_from`'s); returns its id."""
        if init_from is not None:
            emb = self.task_embeddings[init_from].detach().clone()
        else:
            emb = torch.randn(self.embedding_dim, generator=self._gen)
        device = self.chunk_embeddings.device
        self.task_embeddings.append(nn.Parameter(emb.to(device)))
        return self.num_tasks - 1

    def set_task(self, task_id: int) -> None:
        """Which embedding `predict`/`step`/`loss` use; adds embeddings up to `task_id` if new."""
        while task_id >= self.num_tasks:
            self.add_task()
        self.current_task = int(task_id)

    def set_task_labels(self, labels: Sequence[str]) -> None:
        """Name the embeddings (embedding i = `labels[i]`), adding embeddings up to one per label."""
        while self.num_tasks < len(labels):
            self.add_task()
        self.task_labels = [str(label) for label in labels]

    @contextmanager
    def using_task(self, task_id: int) -> Iterator[None]:
        """Predict with embedding `task_id` inside the block; the current task is restored after it."""
        saved = self.current_task
        self.set_task(task_id)
        try:
            yield
        finally:
            self.current_task = saved

    def hnet_parameters(self) -> list[nn.Parameter]:
        """theta: everything shared by all tasks (layers and chunk embeddings)."""
        return [self.chunk_embeddings, *self.layers.parameters()]

    # ---- weight generation --------------------------------------------------------------------
    def raw_outputs(self, embeddings: Tensor) -> Tensor:
        """h(e, c) for K task embeddings (K, emb) -> (K, numel), all chunks in one batch."""
        k = embeddings.shape[0]
        x = torch.cat([
            embeddings[:, None, :].expand(k, self.num_chunks, embeddings.shape[1]),
            self.chunk_embeddings[None].expand(k, *self.chunk_embeddings.shape),
        ], dim=-1).reshape(k * self.num_chunks, -1)
        for layer in self.layers[:-1]:
            x = F.elu(layer(x))
        out = self.layers[-1](x)
        return out.reshape(k, self.num_chunks * self.chunk_size)[:, : self.spec.numel]

    def task_raw_outputs(self, task_ids: Sequence[int]) -> Tensor:
        return self.raw_outputs(torch.stack([self.task_embeddings[i] for i in task_ids]))

    def generate(self, task_id: int) -> list[Tensor]:
        """The target MLP's weight list for a task (differentiable; no cache)."""
        raw = self.raw_outputs(self.task_embeddings[task_id][None])[0]
        return self.spec.split(self.offset + self.scale * raw)

    @torch.no_grad()
    def _calibrate_output_scale(self) -> None:
        """Scale the last layer so h starts near unit variance (targets start at their usual init)."""
        raw = self.task_raw_outputs([0])
        std = float(raw.std())
        if std > 0:
            self.layers[-1].weight.div_(std)
            self.layers[-1].bias.div_(std)

    def _versions(self, task_id: int) -> tuple[int, ...]:
        params = [*self.hnet_parameters(), self.task_embeddings[task_id], self.offset, self.scale]
        return tuple(p._version for p in params) + (id(self.task_embeddings[task_id]),)

    def weights(self, task_id: int | None = None) -> list[Tensor]:
        """Weights for a task: generated with autograd when grad is on, else from the cache."""
        task_id = self.current_task if task_id is None else task_id
        if torch.is_grad_enabled():
            return self.generate(task_id)
        key = self._versions(task_id)
        hit = self._cache.get(task_id)
        if hit is not None and hit[0] == key:
            return hit[1]
        with torch.no_grad():
            w = [t.contiguous() for t in self.generate(task_id)]
        self._cache[task_id] = (key, w)
        return w

    def invalidate_cache(self) -> None:
        self._cache.clear()

    # ---- DynamicsModel ------------------------------------------------------------------------
    def predict_targets(self, inputs: Tensor) -> tuple[Tensor, Tensor]:
        return gaussian_mlp_forward(inputs, self.weights())

    def task_loss(self, batch: Transitions, task_id: int | None = None) -> Tensor:
        inputs = self.model_inputs(batch.states, batch.actions)
        target = self.target_norm.normalize(self.codec.targets(batch.states, batch.next_states))
        weights = self.weights(task_id)
        mean, logvar = gaussian_mlp_forward(inputs, weights)
        return gaussian_nll(mean, logvar, target)

    def multitask_loss(self, batch: Transitions, task_ids: Tensor) -> Tensor:
        """Joint multi-task training: the mean over the tasks present in the batch of each task's NLL
        (`task_ids` (N,): each transition's embedding). The weights of all present tasks come from one
        batched hypernetwork call; each task's transitions go through its target network as one batch."""
        present = torch.unique(task_ids)
        raw = self.raw_outputs(torch.stack([self.task_embeddings[int(t)] for t in present]))
        inputs = self.model_inputs(batch.states, batch.actions)
        target = self.target_norm.normalize(self.codec.targets(batch.states, batch.next_states))
        losses = []
        for k, t in enumerate(present):
            mask = task_ids == t
            mean, logvar = gaussian_mlp_forward(inputs[mask], self.spec.split(self.offset + self.scale * raw[k]))
            losses.append(gaussian_nll(mean, logvar, target[mask]))
        return torch.stack(losses).mean()

    def loss(self, batch: Transitions) -> Tensor:
        """NLL of the current task (the old-task regularizer belongs to the strategy)."""
        return self.task_loss(batch)

    @torch.no_grad()
    def step(self, states: Tensor, actions: Tensor) -> Tensor:
        mean = gaussian_mlp_mean(self.model_inputs(states, actions), self.weights())
        return self.codec.integrate(states, self.target_norm.denormalize(mean))

    @torch.no_grad()
    def task_errors(self, data: Transitions, task_ids: Sequence[int] | None = None) -> Tensor:
        """Normalized one-step MSE of each task embedding on `data` (for task inference)."""
        ids = list(range(self.num_tasks)) if task_ids is None else list(task_ids)
        inputs = self.model_inputs(data.states, data.actions)
        target = self.target_norm.normalize(self.codec.targets(data.states, data.next_states))
        errs = [(gaussian_mlp_mean(inputs, self.weights(i)) - target).pow(2).mean() for i in ids]
        return torch.stack(errs)

    # ---- checkpoints with a growing number of tasks ---------------------------------------------
    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True, assign: bool = False):
        n = 1 + max((int(k.split(".")[1]) for k in state_dict if k.startswith("task_embeddings.")), default=-1)
        while self.num_tasks < n:
            self.add_task()
        self.invalidate_cache()
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def get_extra_state(self) -> dict[str, Any]:
        return {"current_task": self.current_task, "task_labels": list(self.task_labels)}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.current_task = int(state.get("current_task", 0))
        self.task_labels = [str(label) for label in state.get("task_labels", [])]


def from_config(node, codec: StateCodec) -> HyperNetwork:
    """Factory for `dynamics=hypernet`."""
    return HyperNetwork(
        codec,
        hidden_size=int(node.target.hidden_size),
        hidden_layers=int(node.target.hidden_layers),
        embedding_dim=int(node.embedding_dim),
        chunk_size=int(node.chunk_size),
        chunk_embedding_dim=int(node.chunk_embedding_dim),
        hnet_hidden=[int(h) for h in node.hnet_hidden],
        seed=int(node.get("init_seed", 0)),
    )
