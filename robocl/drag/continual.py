"""Continual learning for the drag predictor: new object categories arrive as tasks.

A strategy decides what the next task trains on and what is added to its loss:
- `finetune`: nothing (the lower bound on old tasks);
- `l2`: strength * sum (theta - theta_prev)^2 toward the weights after the last task;
- `ewc`: strength/2 * sum F (theta - theta_prev)^2, F the diagonal empirical Fisher of the last
  task's drag loss, summed over tasks (online EWC, gamma = 1);
- `coreset`: a fixed number of the old tasks' drags (and only the clouds they use) replayed with
  the new task's.
The penalties are the ones robocl.continual's L2 and EWC use (`quadratic_anchor`); the training
loop is `train_two_stage` with its `penalty` hook.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from robocl.continual.penalties import quadratic_anchor
from robocl.drag.dataset import DragSplit
from robocl.drag.model import DragPredictor
from robocl.drag.train import Penalty, TrainConfig, drag_losses, run_model

STRATEGIES = ("finetune", "l2", "ewc", "coreset")
SETTINGS = {"finetune": (), "l2": ("l2_strength",), "ewc": ("ewc_strength", "fisher_samples"),
            "coreset": ("coreset_drags",)}  # the StrategyConfig fields each strategy reads


@dataclass(frozen=True)
class StrategyConfig:
    l2_strength: float = 10.0
    ewc_strength: float = 100.0
    fisher_samples: int = 128
    coreset_drags: int = 512
    seed: int = 0


class DragStrategy:
    """Finetune: train the new task from where the last one left off."""

    name = "finetune"

    def penalty(self) -> Penalty | None:
        """What `train_two_stage` adds to each step's loss (None: nothing)."""
        return None

    def training_data(self, new: DragSplit) -> DragSplit:
        return new

    def consolidate(self, model: DragPredictor, data: DragSplit, train: TrainConfig) -> None:
        """Store what the finished task's penalty or replay needs (its data is dropped afterwards)."""


class L2Anchor(DragStrategy):
    name = "l2"

    def __init__(self, strength: float) -> None:
        self.strength = strength
        self.anchor: list[Tensor] | None = None

    def consolidate(self, model: DragPredictor, data: DragSplit, train: TrainConfig) -> None:
        self.anchor = [p.detach().clone() for p in model.parameters()]

    def penalty(self) -> Penalty | None:
        if self.anchor is None:
            return None
        return lambda model: self.strength * quadratic_anchor(list(model.parameters()), self.anchor)


class EWCAnchor(L2Anchor):
    name = "ewc"

    def __init__(self, strength: float, samples: int, seed: int) -> None:
        super().__init__(strength)
        self.samples = samples
        self.generator = torch.Generator().manual_seed(seed)
        self.fisher: list[Tensor] | None = None

    def consolidate(self, model: DragPredictor, data: DragSplit, train: TrainConfig) -> None:
        new = drag_fisher(model, data, train, self.samples, self.generator)
        self.fisher = new if self.fisher is None else [f + n for f, n in zip(self.fisher, new)]
        super().consolidate(model, data, train)

    def penalty(self) -> Penalty | None:
        if self.anchor is None or self.fisher is None:
            return None
        return lambda model: 0.5 * self.strength * quadratic_anchor(list(model.parameters()), self.anchor,
                                                                    self.fisher)


class Coreset(DragStrategy):
    name = "coreset"

    def __init__(self, drags: int, seed: int) -> None:
        self.drags = drags
        self.generator = torch.Generator().manual_seed(seed)
        self.memory: list[DragSplit] = []

    def consolidate(self, model: DragPredictor, data: DragSplit, train: TrainConfig) -> None:
        """Keep `drags` in all, split evenly over the tasks seen so far."""
        per_task = self.drags // (len(self.memory) + 1)
        self.memory = [m.take(torch.arange(min(per_task, len(m)))) for m in self.memory]
        pick = torch.randperm(len(data), generator=self.generator)[: min(per_task, len(data))]
        self.memory.append(data.take(pick.sort().values))

    def training_data(self, new: DragSplit) -> DragSplit:
        return DragSplit.concat([new, *self.memory]) if self.memory else new


def make_strategy(name: str, cfg: StrategyConfig) -> DragStrategy:
    if name == "finetune":
        return DragStrategy()
    if name == "l2":
        return L2Anchor(cfg.l2_strength)
    if name == "ewc":
        return EWCAnchor(cfg.ewc_strength, cfg.fisher_samples, cfg.seed)
    if name == "coreset":
        return Coreset(cfg.coreset_drags, cfg.seed)
    raise ValueError(f"unknown drag continual strategy {name!r}; expected one of {list(STRATEGIES)}")


def drag_fisher(model: DragPredictor, data: DragSplit, train: TrainConfig, samples: int,
                generator: torch.Generator | None = None) -> list[Tensor]:
    """Diagonal empirical Fisher: the mean over `samples` drags of each drag's squared gradient of
    the stage-2 loss, one drag per backward pass (the model's sparse interpolation matrices do not
    vmap, and a squared *batch* gradient would shrink F by about the batch size)."""
    if data.neighbors is None:
        data.attach_neighbors(model)
    params = list(model.parameters())
    fisher = [torch.zeros_like(p) for p in params]
    idx = torch.randperm(len(data), generator=generator)[: min(samples, len(data))]
    was_training = model.training
    model.train()  # the training loss (eval mode adds the mask refinement and a hard gate)
    with torch.enable_grad():
        for i in idx:
            batch = data.batch(i[None])
            loss = drag_losses(run_model(model, batch), batch, 2, train)["loss"]
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            for f, g in zip(fisher, grads):
                if g is not None:
                    f.add_(g.pow(2))
    model.train(was_training)
    return [f / len(idx) for f in fisher]
