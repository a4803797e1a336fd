"""Two-stage Lightning training of the drag predictor (PartRM: motion first, then parts/geometry).

Stage 1 fits per-point motion with the free-form flow head (end-point error in cm, and which
points move at all). Stage 2 adds the part level: moving-part segmentation at full weight, joint
type, axis, hinge pivot and joint motion, and the kinematic decoding of that joint estimate into
rigid per-part motion (the model's output), refining the whole network at a lower learning rate. A checkpoint is written
atomically (temp file + os.replace) after every epoch, so an interrupted run leaves a usable model,
with the generators the next epoch draws from (global torch/numpy/Python: augmentation; the loader's: batch
order), and beside it the stage's Lightning state (optimizer, schedule, epoch; `<checkpoint>.stage<N>.ckpt`),
so the next call with the same settings resumes at the next epoch instead of starting over, and ends with the
weights and history of the uninterrupted run (bitwise, on the same machine and thread count).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader

from robocl.drag.dataset import DragBatches, DragSplit
from robocl.drag.model import EMBED_PULL, EMBED_PUSH, DragModelConfig, DragOutput, DragPredictor, Level
from robocl.dynamics.training import rng_state, set_rng_state
from robocl.utils.io import atomic_torch_save
from robocl.utils.lightning import fit_quietly, quiet_trainer

Penalty = Callable[[DragPredictor], Tensor]


@dataclass(frozen=True)
class TrainConfig:
    stage1_epochs: int = 8
    stage2_epochs: int = 4
    batch_size: int = 16
    lr: float = 2e-3
    stage2_lr: float = 7e-4
    weight_decay: float = 1e-5
    seg_weight: float = 1.0
    embed_weight: float = 3.0  # of the embedding's pull/push loss within the segmentation terms
    iou_weight: float = 0.0  # of the per-drag soft-IoU loss on the moving mask within the segmentation terms
    joint_weight: float = 0.3
    augment: bool = True
    seed: int = 0
    max_batches_per_epoch: int | None = None


def drag_losses(out: DragOutput, batch: dict[str, Tensor], stage: int, cfg: TrainConfig) -> dict[str, Tensor]:
    """Loss terms; `loss` is what the optimizer sees for `stage`.

    Stage 1 (motion): end-point error of the gated flow over all points and over the moving points,
    the ungated flow on the moving points, and whether each point moves at all (without that term
    the gate collapses to "nothing moves": measured). Stage 2 (parts and joints): the same for the
    kinematic decoding (the model's output when decoder="kinematic"; the flow terms stay at half
    weight), the segmentation at full weight with its parts (on a movable part, part-centre
    votes, the part-instance embedding's pull/push loss, whether the drag moves anything), joint
    type, axis, hinge pivot and joint motion.
    """
    moving = batch["moving"]
    n_mov = moving.sum().clamp_min(1)
    gate = out.gate

    def motion_terms(motion: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        err = ((gate * motion - batch["displacement"]).pow(2).sum(-1) + 1e-10).sqrt() * 100.0  # cm
        raw = ((motion - batch["displacement"]).pow(2).sum(-1) + 1e-10).sqrt() * 100.0
        return err.mean(), (err * moving).sum() / n_mov, (raw * moving).sum() / n_mov

    seg = F.binary_cross_entropy_with_logits(out.moving_logit, moving.float(), pos_weight=torch.tensor(3.0))
    on_part = batch["labels"] > 0
    mov = F.binary_cross_entropy_with_logits(out.movable_logit, on_part.float())
    vote = ((out.vote - part_centres(batch["points"], batch["labels"])).norm(dim=-1) * on_part).sum() \
        / on_part.sum().clamp_min(1) * 10.0  # dm
    f_all, f_mov, f_raw = motion_terms(out.flow_motion)
    terms = {"epe_cm": f_all, "epe_moving_cm": f_mov, "motion_cm": f_raw, "seg": seg, "movable": mov,
             "vote": vote}
    parts = seg + mov + vote
    if cfg.iou_weight > 0:
        terms["soft_iou"] = soft_iou_loss(out.moving_logit, moving)
        parts = parts + cfg.iou_weight * terms["soft_iou"]
    if out.embedding is not None:
        terms["embed"] = discriminative_loss(out.embedding, batch["labels"])
        parts = parts + cfg.embed_weight * terms["embed"]
    if out.moves_logit is not None:
        terms["moves"] = F.binary_cross_entropy_with_logits(out.moves_logit, moving.any(dim=-1).float())
        parts = parts + terms["moves"]
    flow_loss = f_all + f_mov + 0.5 * f_raw
    if stage == 1:
        terms["loss"] = flow_loss + cfg.seg_weight * 5.0 * parts
        return terms
    k_all, k_mov, k_raw = motion_terms(out.kin_motion)
    if out.displacement is not out.flow_motion:  # report what the model outputs
        terms.update(epe_cm=k_all, epe_moving_cm=k_mov, motion_cm=k_raw, flow_epe_cm=f_all)
    has = batch["joint_type"] >= 0
    zero = torch.zeros(())
    jt = F.cross_entropy(out.joint_logit[has], batch["joint_type"][has]) if has.any() else zero
    ax = (1 - (out.axis[has] * batch["axis"][has]).sum(-1).abs()).mean() if has.any() else zero
    if has.any():  # joint motion as a vector (amount x axis): sign-consistent whatever the axis sign
        t = batch["joint_type"][has]
        amount = out.amount[has].gather(1, t[:, None])
        target = batch["delta"][has, None] * batch["axis"][has]
        scale = torch.where(t == 0, 10.0, 1.0)[:, None]  # dm or rad
        am = ((amount * out.axis[has] - target) * scale).norm(dim=-1).mean()
    else:
        am = zero
    rev = batch["joint_type"] == 1
    if rev.any():
        off = out.pivot[rev] - batch["origin"][rev]
        a = batch["axis"][rev]
        pv = (off - (off * a).sum(-1, keepdim=True) * a).norm(dim=-1).mean() * 10.0  # dm to the hinge line
    else:
        pv = zero
    terms.update(joint_type=jt, axis=ax, pivot=pv, amount=am)
    terms["loss"] = (k_all + k_mov + 0.5 * k_raw + 0.5 * flow_loss
                     + cfg.seg_weight * 10.0 * parts
                     + cfg.joint_weight * 10.0 * (jt + ax + pv + am))
    return terms


def soft_iou_loss(logit: Tensor, target: Tensor) -> Tensor:
    """Mean over drags that move something of 1 - soft IoU (sum p t / sum (p + t - p t)) of the
    moving mask. Why: the point-wise BCE weighs a drag by its part's point count, so a small
    drawer's mask barely registers, while part_iou scores every drag alike (held-out drawers under
    50 points scored IoU 0.60 with BCE alone)."""
    p = torch.sigmoid(logit)
    t = target.float()
    inter = (p * t).sum(-1)
    union = (p + t - p * t).sum(-1)
    has = t.sum(-1) > 0
    if not has.any():
        return logit.sum() * 0.0
    return (1.0 - inter[has] / union[has].clamp_min(1e-6)).mean()


def discriminative_loss(embedding: Tensor, labels: Tensor) -> Tensor:
    """Pull each point's embedding (B,N,E) to within EMBED_PULL of its part's mean, push the means
    of the parts of a cloud (the static body is one) at least 2 * EMBED_PUSH apart, and keep the
    means near the origin (De Brabandere et al. 2017)."""
    onehot, means, counts = part_means(embedding, labels)
    present = counts > 0
    d_own = ((embedding - onehot @ means).pow(2).sum(-1) + 1e-10).sqrt()
    pull = F.relu(d_own - EMBED_PULL).pow(2).mean()
    d_means = ((means[:, :, None] - means[:, None]).pow(2).sum(-1) + 1e-10).sqrt()
    pairs = present[:, :, None] & present[:, None] & ~torch.eye(means.shape[1], dtype=torch.bool)[None]
    push = (F.relu(2 * EMBED_PUSH - d_means).pow(2) * pairs).sum() / pairs.sum().clamp_min(1)
    reg = (means.norm(dim=-1) * present).sum() / present.sum().clamp_min(1)
    return pull + push + 1e-3 * reg


def part_means(values: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-part means (B,K,C) of per-point values (B,N,C), with the one-hot labels (B,N,K) and the
    points per part (B,K); K = the largest label + 1 (a part absent from a cloud has mean 0)."""
    onehot = F.one_hot(labels.clamp_min(0), int(labels.max()) + 1).float()
    counts = onehot.sum(dim=1)
    return onehot, (onehot.transpose(1, 2) @ values) / counts[..., None].clamp_min(1), counts


def part_centres(points: Tensor, labels: Tensor) -> Tensor:
    """Each point's part centroid (B,N,3): the target of the part-centre votes."""
    onehot, centres, _ = part_means(points, labels)
    return onehot @ centres


def run_model(model: DragPredictor, batch: dict[str, Tensor]) -> DragOutput:
    return model(batch["points"], batch["colors"], batch["start"], batch["vec"], neighbors=batch.get("neighbors"))


class DragModule(pl.LightningModule):
    """Lightning wrapper: one stage at a time; the plain nn.Module stays usable without Lightning."""

    def __init__(self, model: DragPredictor, cfg: TrainConfig, stage: int, lr: float, total_steps: int,
                 penalty: Penalty | None = None) -> None:
        super().__init__()
        self.model = model
        self.penalty = penalty
        self.cfg = cfg
        self.stage = stage
        self.lr = lr
        self.total_steps = max(total_steps, 1)
        self.epoch_losses: list[dict[str, float]] = []
        self._acc: dict[str, list[float]] = {}

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        terms = drag_losses(run_model(self.model, batch), batch, self.stage, self.cfg)
        if self.penalty is not None:  # a continual strategy's pull toward earlier tasks
            terms["penalty"] = self.penalty(self.model)
            terms["loss"] = terms["loss"] + terms["penalty"]
        for k, v in terms.items():
            self._acc.setdefault(k, []).append(float(v.detach()))
        self.log("loss", terms["loss"], prog_bar=True, on_step=True, on_epoch=False)
        return terms["loss"]

    def finish_epoch(self) -> None:
        """Close the epoch's loss means (idempotent: callbacks may run before this module's hook)."""
        if self._acc:
            self.epoch_losses.append({k: sum(v) / len(v) for k, v in self._acc.items()} | {"stage": self.stage})
            self._acc = {}

    def on_train_epoch_end(self) -> None:
        self.finish_epoch()

    def configure_optimizers(self) -> Any:
        opt = torch.optim.AdamW(self.model.parameters(), lr=self.lr, weight_decay=self.cfg.weight_decay)
        warm = max(1, int((0.1 if self.stage == 1 else 0.05) * self.total_steps))

        def factor(step: int) -> float:  # linear warm-up, then cosine down to 5%
            if step < warm:
                return (step + 1) / warm
            t = min(1.0, (step - warm) / max(1, self.total_steps - warm))
            return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def resume_path(checkpoint: Path, stage: int, previous: bool = False) -> Path:
    """The Lightning state of a stage in progress, beside the model checkpoint (`previous`: the epoch before's)."""
    return Path(checkpoint).with_name(f"{Path(checkpoint).name}.stage{stage}{'.prev' if previous else ''}.ckpt")


def _resumable(checkpoint: Path | None, stage: int, done: int) -> Path | None:
    """The stage's Lightning state saved at the end of its `done`-th epoch (the latest one, or the one before it
    when a kill came between an epoch's Lightning state and its model checkpoint)."""
    if checkpoint is None or not done:
        return None
    for path in (resume_path(checkpoint, stage), resume_path(checkpoint, stage, previous=True)):
        if path.exists() and torch.load(path, map_location="cpu", weights_only=False).get("epoch") == done - 1:
            return path
    return None


class AtomicCheckpoint(pl.Callback):
    """After every epoch: the stage's Lightning state (for resuming; the previous epoch's is kept beside it),
    then model weights, architecture, history and the generators' states, each written atomically. The model
    checkpoint is the commit: whatever epoch it holds, the Lightning state of that epoch is on disk."""

    def __init__(self, path: Path, history: list[dict[str, float]], extra: dict[str, Any],
                 batches: torch.Generator) -> None:
        self.path = Path(path)
        self.history = history
        self.extra = extra
        self.batches = batches

    def on_train_epoch_end(self, trainer: pl.Trainer, module: DragModule) -> None:
        module.finish_epoch()
        final = resume_path(self.path, module.stage)
        if final.exists():
            os.replace(final, resume_path(self.path, module.stage, previous=True))
        tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        trainer.save_checkpoint(tmp, weights_only=False)
        os.replace(tmp, final)
        save_checkpoint(self.path, module.model, self.history + module.epoch_losses,
                        {**self.extra, "rng": rng_state(), "batches": self.batches.get_state()})


class EpochProgress(pl.Callback):
    def __init__(self, callback: Callable[[int, dict[str, float]], None]) -> None:
        self.callback = callback

    def on_train_epoch_end(self, trainer: pl.Trainer, module: DragModule) -> None:
        module.finish_epoch()
        if module.epoch_losses:
            self.callback(module.stage, module.epoch_losses[-1])


def save_checkpoint(path: Path, model: DragPredictor, history: list[dict[str, float]],
                    extra: dict[str, Any] | None = None) -> Path:
    payload = {"model": model.state_dict(), "config": asdict(model.cfg), "history": history, **(extra or {})}
    return atomic_torch_save(payload, path)


def load_checkpoint(path: Path) -> tuple[DragPredictor, dict[str, Any]]:
    state = torch.load(path, map_location="cpu", weights_only=False)
    cfg = dict(state["config"])
    cfg.setdefault("moves_head", False)  # checkpoints written before the moves head
    cfg["levels"] = tuple(Level(**lv) if isinstance(lv, dict) else Level(*lv) for lv in cfg["levels"])
    model = DragPredictor(DragModelConfig(**cfg))
    model.load_state_dict(state["model"])
    return model.eval(), state


def _finished_epochs(model: DragPredictor, cfg: TrainConfig, checkpoint: Path | None,
                     batches: torch.Generator) -> list[dict[str, float]]:
    """History of an unfinished checkpoint of this same model and training config (its weights are
    loaded into `model`, its generators' states into the global ones and `batches`); empty when there is
    none to resume."""
    if checkpoint is None or not Path(checkpoint).exists():
        return []
    prior, state = load_checkpoint(checkpoint)
    if state.get("complete") or state.get("train") != asdict(cfg) or prior.cfg != model.cfg:
        return []
    model.load_state_dict(prior.state_dict())
    if "rng" in state:  # (checkpoints written before the generators were saved resume with fresh ones)
        set_rng_state(state["rng"])
        batches.set_state(state["batches"])
    return list(state["history"])


def train_two_stage(model: DragPredictor, data: DragSplit, cfg: TrainConfig, checkpoint: Path | None = None,
                    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
                    progress_bar: bool = False, penalty: Penalty | None = None) -> list[dict[str, float]]:
    """Stage 1 (motion) then stage 2 (+ segmentation and joint heads); returns per-epoch losses.

    With a `checkpoint` left unfinished by an interrupted call with the same settings, training
    resumes after its last finished epoch (optimizer and schedule from the Lightning state, augmentation and
    batch order from the saved generators: it ends as the uninterrupted call would have; a stage whose Lightning
    state is missing restarts its schedule over the epochs it has left). `penalty(model)` is added to every
    step's loss (a continual strategy's regularizer, robocl.drag.continual)."""
    pl.seed_everything(cfg.seed, workers=False, verbose=False)
    if data.neighbors is None:
        data.attach_neighbors(model)
    ds = DragBatches(data, augment=cfg.augment)
    batches = torch.Generator().manual_seed(cfg.seed)
    loader = DataLoader(ds, batch_size=cfg.batch_size, shuffle=True, collate_fn=ds.collate, drop_last=len(ds) >
                        cfg.batch_size, generator=batches)
    per_epoch = len(loader) if cfg.max_batches_per_epoch is None else min(len(loader), cfg.max_batches_per_epoch)
    history = _finished_epochs(model, cfg, checkpoint, batches)
    model.train()
    for stage, epochs, lr in ((1, cfg.stage1_epochs, cfg.lr), (2, cfg.stage2_epochs, cfg.stage2_lr)):
        done = sum(h["stage"] == stage for h in history)
        if epochs <= done:
            continue
        resume_from = _resumable(checkpoint, stage, done)
        if done and resume_from is None:  # no Lightning state: the rest of the stage, a fresh schedule
            epochs -= done
        module = DragModule(model, cfg, stage, lr, total_steps=epochs * per_epoch, penalty=penalty)
        callbacks: list[pl.Callback] = []
        if checkpoint is not None:
            callbacks.append(AtomicCheckpoint(checkpoint, history, {"train": asdict(cfg)}, batches))
        if on_epoch is not None:
            callbacks.append(EpochProgress(on_epoch))
        trainer = quiet_trainer(epochs, progress_bar=progress_bar, callbacks=callbacks,
                                limit_train_batches=per_epoch)
        fit_quietly(trainer, module, loader, ckpt_path=resume_from)
        history += module.epoch_losses
    model.eval()
    if checkpoint is not None:
        save_checkpoint(checkpoint, model, history, {"train": asdict(cfg), "complete": True})
        for stage in (1, 2):
            for previous in (False, True):
                resume_path(checkpoint, stage, previous).unlink(missing_ok=True)
    return history
