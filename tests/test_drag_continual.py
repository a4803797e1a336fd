"""The drag predictor's continual setting: strategies on real rendered data, real training."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from test_drag import SMALL as TEST_SMALL

from robocl.drag.continual import Coreset, DragStrategy, EWCAnchor, L2Anchor, drag_fisher
from robocl.drag.datagen import DatagenConfig, generate
from robocl.drag.dataset import DragSplit, load_split
from robocl.drag.model import DragPredictor
from robocl.drag.train import TrainConfig, drag_losses, run_model, train_two_stage

SMALL = replace(TEST_SMALL, decoder="flow")  # the kinematic decoder needs more steps than a unit test affords


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    """Task 0: one cabinet cloud; task 1: one fridge cloud (8 drags each, rendered in MuJoCo)."""
    out = []
    for cats, seed in ((("cabinet",), 3), (("fridge",), 4)):
        root = tmp_path_factory.mktemp("drag-data")
        generate(root, DatagenConfig(objects=1, heldout_objects=1, states=1, drags=8, points=512, image_size=120,
                                     seed=seed, train_categories=cats), show_bar=False)
        out.append(load_split(root, "train"))
    return out


def mean_loss(model: DragPredictor, data: DragSplit, cfg: TrainConfig) -> float:
    """The stage-2 training loss over all drags (train mode: without the eval-time refinement)."""
    model.train()
    with torch.no_grad():
        batch = data.batch(torch.arange(len(data)))
        return float(drag_losses(run_model(model, batch), batch, 2, cfg)["loss"])


def test_penalties_match_hand_computed_values(tasks):
    model = DragPredictor(SMALL)
    cfg = TrainConfig()
    l2 = L2Anchor(strength=3.0)
    assert l2.penalty() is None  # nothing to protect before the first task ends
    l2.consolidate(model, tasks[0], cfg)
    assert float(l2.penalty()(model)) == 0.0
    p = next(model.parameters())
    with torch.no_grad():
        p[0].add_(0.5)  # p[0] has p.shape[1:] entries
    assert float(l2.penalty()(model)) == pytest.approx(3.0 * 0.25 * p[0].numel(), rel=1e-5)

    ewc = EWCAnchor(strength=2.0, samples=4, seed=0)
    fresh = DragPredictor(SMALL)
    ewc.consolidate(fresh, tasks[0], cfg)
    assert all((f >= 0).all() for f in ewc.fisher) and sum(float(f.sum()) for f in ewc.fisher) > 0
    q = next(fresh.parameters())
    with torch.no_grad():
        q[0].add_(0.5)
    expected = 0.5 * 2.0 * 0.25 * float(ewc.fisher[0][0].sum())
    assert float(ewc.penalty()(fresh)) == pytest.approx(expected, rel=1e-5)


def test_fisher_is_the_mean_squared_per_drag_gradient(tasks):
    """Hand computation for two drags, one backward each."""
    torch.manual_seed(0)
    model = DragPredictor(SMALL)
    cfg = TrainConfig()
    data = tasks[0].take(torch.tensor([1, 4]))
    data.attach_neighbors(model)
    fisher = drag_fisher(model, data, cfg, samples=2)
    w = model.point_head[-1].weight
    index = [i for i, p in enumerate(model.parameters()) if p is w][0]
    squares = []
    for i in range(2):
        batch = data.batch(torch.tensor([i]))
        loss = drag_losses(run_model(model, batch), batch, 2, cfg)["loss"]
        squares.append(torch.autograd.grad(loss, w)[0].pow(2))
    assert torch.allclose(fisher[index], (squares[0] + squares[1]) / 2, rtol=1e-4, atol=1e-10)


def test_coreset_replays_old_drags_with_their_clouds(tasks):
    old, new = tasks
    coreset = Coreset(drags=3, seed=0)
    assert coreset.training_data(new) is new
    coreset.consolidate(DragPredictor(SMALL), old, TrainConfig())
    mixed = coreset.training_data(new)
    assert len(mixed) == len(new) + 3
    memory = coreset.memory[0]
    assert len(memory.points) == 1  # one cloud behind the three drags, kept once
    tail = mixed.batch(torch.arange(len(new), len(mixed)))
    assert torch.equal(tail["points"], memory.batch(torch.arange(3))["points"])
    assert torch.equal(tail["moving"], memory.moving)


def test_l2_forgets_task0_less_than_finetune(tasks):
    """Real two-stage training on task 0, then task 1 with each strategy from the same weights:
    the anchored model stays closer to its task-0 loss than plain fine-tuning."""
    old, new = tasks
    torch.manual_seed(0)
    model = DragPredictor(SMALL)
    cfg0 = TrainConfig(stage1_epochs=30, stage2_epochs=5, batch_size=8, lr=5e-3, stage2_lr=2e-3, augment=False)
    train_two_stage(model, old, cfg0)
    cfg1 = TrainConfig(stage1_epochs=0, stage2_epochs=25, batch_size=8, stage2_lr=3e-3, augment=False)
    base = mean_loss(model, old, cfg1)
    result = {}
    for strategy in (DragStrategy(), L2Anchor(strength=1000.0)):
        m = DragPredictor(SMALL)
        m.load_state_dict(model.state_dict())
        strategy.consolidate(m, old, cfg1)
        history = train_two_stage(m, strategy.training_data(new), cfg1, penalty=strategy.penalty())
        result[strategy.name] = (mean_loss(m, old, cfg1), mean_loss(m, new, cfg1), history)
    ft_old, ft_new, _ = result["finetune"]
    l2_old, l2_new, l2_hist = result["l2"]
    assert ft_old > 1.5 * base, (base, ft_old)  # fine-tuning on fridges forgets the cabinet
    assert l2_old - base < 0.5 * (ft_old - base), (base, ft_old, l2_old)
    assert ft_new < l2_new  # ... and the anchor costs plasticity
    assert all("penalty" in h for h in l2_hist)


def test_drag_continual_experiment_end_to_end(tmp_path):
    """`experiment=drag_continual` composed by Hydra and run at toy scale: both tasks' data,
    the task-0 model, every strategy on task 1, matrices, continual.md and heatmaps."""
    from robocl.cli.app import compose
    from robocl.experiments.drag_continual import run

    cfg, _ = compose(["experiment=drag_continual", "runtime.progress=false", "runtime.threads=1",
                      f"runtime.cache_dir={tmp_path / 'cache'}", "drag.objects=2", "drag.heldout_objects=1",
                      "drag.val_objects=0", "drag.states=1", "drag.drags=4", "drag.points=512", "drag.stage1_epochs=1",
                      "drag.stage2_epochs=1", "drag.continual.task_objects=1", "drag.continual.epochs=1",
                      "drag.continual.fisher_samples=2", "drag.continual.coreset_drags=2"])
    out = run(cfg, tmp_path / "run")
    assert set(out["summary"]) == {"finetune", "l2", "ewc", "coreset"}
    rows = {r["method"]: r for r in out["runs"]}
    for row in rows.values():
        assert {"part_iou_old", "part_iou_new", "part_iou_forgetting", "epe_bwt", "axis_err_deg_avg_acc"} <= set(row)
        assert 0.0 <= row["part_iou_new"] <= 1.0
    report = (tmp_path / "run" / "continual.md").read_text()
    assert "finetune: part_iou R[i][j]" in report and "coreset: epe R[i][j]" in report
    assert all((tmp_path / "run" / f"heatmap_{m}.png").stat().st_size > 0 for m in ("part_iou", "epe"))
    assert len(list((tmp_path / "cache").glob("drag-cl-*.pt"))) == 4  # one checkpoint per strategy
    json.dumps(out)


@pytest.mark.parametrize("experiment, args, fragment", [
    ("drag_continual", ["methods=[hypercrl]"], "methods: unknown ['hypercrl']"),
    ("drag_continual", ["drag.continual.epochs=0"], "drag.continual.epochs"),
    ("drag_continual", ["drag.continual.l2_strength=-1"], "drag.continual.l2_strength"),
    ("drag_continual", ["drag.refine.sigma_xyz=0"], "drag.refine.sigma_xyz"),
    ("cabinet_drag", ["drag.compile=maybe"], "drag.compile='maybe': must be true or false"),
    ("cabinet_drag", ["drag.points=100"], "drag.points"),
    ("cabinet_drag", ["drag.iou_weight=-1"], "drag.iou_weight=-1: must be a number >= 0"),
    ("cabinet_drag", ["methods=[drag_xl]"], "methods: unknown ['drag_xl']"),
])
def test_bad_drag_settings_one_line_exit_2(tmp_path, experiment, args, fragment):
    exe = Path(sys.executable).with_name("robocl-run")
    proc = subprocess.run([str(exe), f"experiment={experiment}",
                           f"hydra.run.dir={tmp_path}", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and fragment in lines[0], proc.stderr
