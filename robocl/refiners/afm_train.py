"""Offline AFM training (Lightning at this edge): fills the refiner's cache (robocl/refiners/afm_cache.py).

`ensure_checkpoint` returns the cached flow network for (refiner config, robot, nominal model) or
regenerates the data and trains it; the checkpoint is written atomically under `runtime.cache_dir`. It is a
cache-filling step: the commands and runners call it (through `robocl.build.refiners.ensure_refiner`)
before they build controllers; the refiner's factory never does. `python -m robocl.cli.afm_train
[KEY=VALUE ...]` always regenerates and retrains (default `experiment=ugv_afm`), with a progress bar, and
writes `afm_train.json`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from robocl.refiners.afm import AFMFlow, AFMNet
from robocl.refiners.afm_cache import cache_path, load_net, make_shape
from robocl.refiners.afm_data import AFMData
from robocl.utils.imports import load_callable
from robocl.utils.io import atomic_torch_save
from robocl.utils.lightning import fit_quietly, quiet_trainer


# ---- Lightning ----------------------------------------------------------------------------------
class AFMModule(pl.LightningModule):
    """Conditional flow matching on sampled (state, context, planned, intended) tuples."""

    def __init__(self, net: AFMNet, train: AFMData, val: AFMData | None, lr: float, seed: int,
                 val_samples: int = 4096) -> None:
        super().__init__()
        self.net = net
        self.train_data, self.val_data = train, val
        self.lr = lr
        self.generator = torch.Generator().manual_seed(seed)
        self.val_samples = val_samples
        self.history: dict[str, list[float]] = {"train_loss": [], "val_transport_mae": [], "val_identity_mae": []}
        self._losses: list[float] = []

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        idx = batch[0]
        d = self.train_data
        rows, mask = d.sample_context(idx, self.net.shape.context_size, self.generator)
        loss = self.net.cfm_loss(d.features[idx], rows, mask, d.planned[idx], d.intended[idx], self.generator)
        self._losses.append(float(loss.detach()))
        return loss

    def on_train_epoch_end(self) -> None:
        if self._losses:
            self.history["train_loss"].append(sum(self._losses) / len(self._losses))
        self._losses = []

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        mae, identity = transport_error(self.net, self.val_data, batch[0])
        self.history["val_transport_mae"].append(mae)
        self.history["val_identity_mae"].append(identity)

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.net.parameters(), lr=self.lr, weight_decay=1e-5)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, self.trainer.max_epochs))
        return [opt], [sched]


@torch.no_grad()
def transport_error(net: AFMNet, data: AFMData, idx: torch.Tensor, solver: str = "midpoint", steps: int = 10,
                    seed: int = 0) -> tuple[float, float]:
    """Mean |refined - intended| and |planned - intended| in normalized action units (full context)."""
    was_training = net.training
    net.eval()
    rows, mask = data.sample_context(idx, net.shape.context_size, torch.Generator().manual_seed(seed),
                                     min_size=net.shape.context_size)
    out = AFMFlow(net, solver, steps).transport(data.features[idx], rows, mask, data.planned[idx])
    lo, hi = net.act_center - net.act_scale, net.act_center + net.act_scale
    out = torch.max(torch.min(out, hi), lo)
    err = ((out - data.intended[idx]) / net.act_scale).abs().mean()
    base = ((data.planned[idx] - data.intended[idx]) / net.act_scale).abs().mean()
    net.train(was_training)
    return float(err), float(base)


class _EpochProgress(pl.Callback):
    def __init__(self, report: Callable[[int, int, str], None]) -> None:
        self.report = report

    def on_train_epoch_end(self, trainer: pl.Trainer, module: AFMModule) -> None:
        h = module.history
        status = f"loss {h['train_loss'][-1]:.4f}" if h["train_loss"] else ""
        if h["val_transport_mae"]:
            status += f"  val |a-a*| {h['val_transport_mae'][-1]:.3f} (identity {h['val_identity_mae'][-1]:.3f})"
        self.report(trainer.current_epoch + 1, int(trainer.max_epochs), status)


def train_net(net: AFMNet, data: AFMData, train_node: Any,
              report: Callable[[int, int, str], None] | None = None) -> dict[str, list[float]]:
    """Fit `net` (normalizers set by the caller) with a Lightning Trainer on the CPU."""
    seed = int(train_node.seed)
    pl.seed_everything(seed, workers=False, verbose=False)
    train, val = data.split(float(train_node.val_fraction), seed)
    loader = DataLoader(TensorDataset(torch.arange(len(train))), batch_size=int(train_node.batch_size),
                        shuffle=True, generator=torch.Generator().manual_seed(seed))
    n_val = min(len(val), 4096)
    val_idx = torch.randperm(len(val), generator=torch.Generator().manual_seed(seed))[:n_val]
    val_loader = DataLoader(TensorDataset(val_idx), batch_size=max(n_val, 1)) if n_val else None
    module = AFMModule(net, train, val if n_val else None, float(train_node.lr), seed)
    trainer = quiet_trainer(int(train_node.epochs), callbacks=[_EpochProgress(report)] if report else [])
    fit_quietly(trainer, module, loader, val_loader)
    net.eval()
    return module.history


def new_net(node: Any, model: Any, action_low: Any, action_high: Any, data: AFMData) -> AFMNet:
    net = AFMNet(make_shape(node, model.codec))
    net.set_normalization(data.features.mean(0), data.features.std(0), torch.as_tensor(action_low, dtype=torch.float32),
                          torch.as_tensor(action_high, dtype=torch.float32), model.target_norm.std.detach().clone())
    return net


def uses_learned_simulator(node: Any, robot: Any) -> bool:
    """`refiner.data.simulator=model` (set for model=PATH robots), or a robot without a simulator."""
    return str(node.data.get("simulator", "mujoco")) == "model" or not robot.get("env_id")


def make_data(node: Any, robot: Any, model: Any, progress=None) -> AFMData:
    """Simulate the regimes named by `node.data` in the robot's env (generator = module:function),
    or, for a robot known only by its learned model, in that model (robocl/refiners/model_env.py)."""
    report = None
    if progress is not None:
        task = progress.add_task("afm data (regimes)", total=int(node.data.regimes), status="")
        report = lambda done, total: progress.update(task, completed=done)  # noqa: E731
    if uses_learned_simulator(node, robot):
        from robocl.errors import UsageError
        from robocl.refiners.afm_data import generate
        from robocl.refiners.model_env import HOOKS, LearnedModelEnv

        codec = str(robot.get("codec"))
        if codec not in HOOKS:
            raise UsageError(f"refiner=afm on robot {robot.name}: training regimes on a learned model needs codec "
                             f"{' or '.join(HOOKS)} (got {codec})")
        env = LearnedModelEnv(model, codec, robot.action_low, robot.action_high, seed=int(node.data.seed))
        # no physics to perturb in a learned model
        return generate(env, model, node.data, report, robot=HOOKS[codec], physics_prob=0.0)
    import gymnasium as gym
    import robocl_envs  # noqa: F401  (registers the envs)

    from robocl.robots.spec import nominal_env

    generator = load_callable(str(node.data.generator), "refiner.data.generator")
    env = gym.make(str(robot.env_id), **nominal_env(robot)[0]).unwrapped
    return generator(env, model, node.data, report)


def ensure_checkpoint(node: Any, robot: Any, model: Any, log: Callable[..., None] = print, progress=None,
                      retrain: bool = False) -> tuple[AFMNet, dict[str, Any], Path]:
    """The trained AFM network for this nominal model: from the cache, or trained and cached."""
    path = cache_path(node, robot, model)
    if path.exists() and not retrain:
        net, info = load_net(path)
        return net, info, path
    model.eval()
    t0 = time.perf_counter()
    where = "the learned nominal model" if uses_learned_simulator(node, robot) else "the simulator"
    log(f"afm: simulating {node.data.regimes} regimes x {node.data.steps} steps in {where}")
    data = make_data(node, robot, model, progress)
    t_data = time.perf_counter() - t0
    net = new_net(node, model, robot.action_low, robot.action_high, data)
    log(f"afm: training the flow on {len(data)} samples for {node.train.epochs} epochs")
    report = None
    if progress is not None:
        task = progress.add_task("afm training (epochs)", total=int(node.train.epochs), status="")
        report = lambda done, total, status: progress.update(task, completed=done, status=status)  # noqa: E731
    history = train_net(net, data, node.train, report)
    nominal = data.miss[data.gains.eq(1.0).all(-1)[data.regime] & ~data.nuisance[data.regime]]
    info = {
        "samples": len(data), "regimes": int(data.starts.shape[0]),
        "data_s": round(t_data, 1), "train_s": round(time.perf_counter() - t0 - t_data, 1),
        "final_train_loss": history["train_loss"][-1] if history["train_loss"] else None,
        "val_transport_mae": history["val_transport_mae"][-1] if history["val_transport_mae"] else None,
        "val_identity_mae": history["val_identity_mae"][-1] if history["val_identity_mae"] else None,
        "nominal_miss_p99": float(nominal.quantile(0.99)) if nominal.numel() else None,
        "intended_miss_p50": float(data.miss[data.executed_intended].median()),
        "history": history,
    }
    atomic_torch_save({"shape": net.shape.__dict__, "net": net.state_dict(), "info": info}, path)
    log(f"afm: cached the refiner at {path} (val |a-a*| {info['val_transport_mae']:.3f}, "
        f"identity {info['val_identity_mae']:.3f})")
    return net, info, path
