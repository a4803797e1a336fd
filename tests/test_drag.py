"""Drag predictor: metrics by hand, dataset format, baselines, model shapes, a real tiny overfit."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from robocl_envs.pointcloud import part_motion

from robocl.drag.baselines import learned, nearest_part, rigid
from robocl.drag.datagen import FORMAT, DatagenConfig, generate
from robocl.drag.dataset import DragBatches, load_split, rotate_z
from robocl.drag.evaluate import evaluate
from robocl.drag.metrics import axis_angle_deg, axis_error, epe, part_iou
from robocl.drag.model import DragModelConfig, DragPredictor, Level
from robocl.drag.ops import Stencil
from robocl.drag.refine import MaskRefinement, refine_probability, smoothing_stencil
from robocl.drag.train import (
    TrainConfig,
    discriminative_loss,
    load_checkpoint,
    resume_path,
    save_checkpoint,
    soft_iou_loss,
    train_two_stage,
)

SMALL = DragModelConfig(point_width=16, levels=(Level(256, 12, 0.1, 32, 0.1), Level(64, 12, 0.25, 64, 0.25),
                                                Level(16, 12, 0.6, 96, 0.6)), fp_width=64, out_width=48)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("drag-data")
    cfg = DatagenConfig(objects=2, heldout_objects=1, states=1, drags=8, points=512, image_size=120, seed=3)
    index = generate(root, cfg, show_bar=False)
    return root, index


def test_metrics_match_hand_computed_values():
    true = torch.zeros(1, 2, 3)
    pred = torch.tensor([[[0.003, 0.004, 0.0], [0.0, 0.0, 0.0]]])
    assert epe(pred, true) == pytest.approx(2.5)  # (5 mm + 0 mm) / 2 points
    a = torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)
    b = torch.tensor([[1, 0, 1, 0], [0, 0, 0, 0]], dtype=torch.bool)
    assert part_iou(a, b) == pytest.approx((1 / 3 + 1.0) / 2)  # nothing moves, correctly: IoU 1
    ang = axis_angle_deg(torch.tensor([[1.0, 0, 0], [2.0, 0, 0]]), torch.tensor([[-1.0, 0, 0], [1.0, 1.0, 0]]))
    assert ang.tolist() == pytest.approx([0.0, 45.0], abs=1e-3)  # sign-invariant; 45 degrees
    assert math.isnan(axis_error(torch.zeros(0, 3), torch.zeros(0, 3)))


def test_dataset_format_and_labels(tiny_data):
    root, index = tiny_data
    on_disk = json.loads((root / "index.json").read_text())
    assert on_disk["format"] == FORMAT and set(on_disk["splits"]) == {"train", "test_instance", "test_category", "val"}
    assert on_disk["splits"]["val"]["objects"] == 0  # val_objects defaults to 0 here (cabinet_drag sets 48)
    cats = {o["split"]: o["category"] for o in on_disk["objects"]}
    assert cats["test_category"] == "fridge" and cats["train"] in ("cabinet", "drawer_unit")
    with np.load(root / on_disk["splits"]["train"]["shards"][0]) as z:
        assert z["points"].shape[1:] == (512, 3) and z["displacement"].shape == (len(z["start"]), 512, 3)
        for d in range(len(z["start"])):
            labels = z["labels"][z["state"][d]]
            pts = z["points"][z["state"][d]]
            assert np.allclose(pts[z["start_index"][d]], z["start"][d])
            assert z["part"][d] == labels[z["start_index"][d]]
            if z["joint_type"][d] < 0:
                assert not z["moving"][d].any()
                continue
            expect = part_motion(pts, labels, int(z["part"][d]), int(z["joint_type"][d]), z["axis"][d],
                                 z["origin"][d], float(z["delta"][d]))
            np.testing.assert_allclose(z["displacement"][d], expect, atol=1e-6)
            assert set(np.unique(labels[z["moving"][d]])) <= {int(z["part"][d])}
    split = load_split(root, "train")
    assert len(split) == 16 and split.points.shape == (2, 512, 3)


def test_baselines_and_augmentation(tiny_data):
    split = load_split(tiny_data[0], "train")
    batch = split.batch(torch.arange(len(split)))
    r = rigid(batch)
    assert torch.allclose(r.displacement, batch["vec"][:, None].expand_as(r.displacement))
    n = nearest_part(batch)
    on_part = batch["part"] > 0
    # the heuristic picks the right part whenever the drag starts on one (labels come from segmentation)
    assert torch.equal(n.moving[on_part], (batch["labels"] == batch["part"][:, None])[on_part])
    assert not n.moving[~on_part].any()
    rot = rotate_z(batch, torch.full((len(split),), 0.4))
    assert torch.allclose(rot["displacement"].norm(dim=-1), batch["displacement"].norm(dim=-1), atol=1e-6)
    assert evaluate(nearest_part, split)["part_iou"] >= evaluate(rigid, split)["part_iou"]


def test_discriminative_loss_matches_hand_computed_value():
    # part 0: embeddings (0,0), (0.6,0): mean (0.3,0), each 0.3 away -> pull (0.3-0.25)^2 on 2 of 4 points;
    # part 1: both at (1,0). Means 0.7 apart -> push (2-0.7)^2; mean norms 0.3, 1.0 -> reg 0.65
    emb = torch.tensor([[[0.0, 0.0], [0.6, 0.0], [1.0, 0.0], [1.0, 0.0]]])
    labels = torch.tensor([[0, 0, 1, 1]])
    expected = 2 * 0.05**2 / 4 + 1.3**2 + 1e-3 * 0.65
    assert float(discriminative_loss(emb, labels)) == pytest.approx(expected, rel=1e-4)
    far = torch.tensor([[[0.0, 0.0], [0.0, 0.0], [3.0, 0.0], [3.0, 0.0]]])
    assert float(discriminative_loss(far, labels)) == pytest.approx(1e-3 * 1.5, rel=1e-4)  # only reg


def test_soft_iou_loss_matches_hand_computed_value():
    # drag 0: p = (0.5, 0.5, 0) on target (1, 0, 0): inter 0.5, union 1.5 -> 1 - 1/3;
    # drag 1: p = (1, 1, 0) on (1, 1, 0) -> 0; drag 2 moves nothing: left out of the mean
    big = 30.0
    logit = torch.tensor([[0.0, 0.0, -big], [big, big, -big], [big, big, big]])
    target = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 0, 0]]).bool()
    assert float(soft_iou_loss(logit, target)) == pytest.approx((2 / 3 + 0.0) / 2, abs=1e-6)
    # a small part counts as much as a large one: missing 1 of 2 points costs what 50 of 100 do
    small = soft_iou_loss(torch.tensor([[big, -big] + [-big] * 98]), torch.tensor([[1, 1] + [0] * 98]).bool())
    large = soft_iou_loss(torch.tensor([[big] * 50 + [-big] * 50]), torch.tensor([[1] * 100]).bool())
    assert float(small) == pytest.approx(0.5, abs=1e-6) and float(large) == pytest.approx(0.5, abs=1e-6)
    assert float(soft_iou_loss(logit[2:], target[2:])) == 0.0


def test_moves_head_gates_the_mask_and_old_checkpoints_load(tmp_path):
    torch.manual_seed(0)
    pts, cols = torch.rand(2, 512, 3), torch.rand(2, 512, 3)
    model = DragPredictor(SMALL).eval()
    with torch.inference_mode():
        out = model(pts, cols, pts[:, 3], torch.randn(2, 3) * 0.1)
    assert out.embedding.shape == (2, 512, SMALL.embed_dim) and out.moves_logit.shape == (2,)
    out.moving_logit = torch.full_like(out.moving_logit, 10.0)
    out.displacement = torch.full_like(out.displacement, 0.01)
    out.moves_logit = torch.tensor([3.0, -3.0])  # the second drag moves nothing (a joint limit)
    assert out.moving()[0].all() and not out.moving()[1].any()
    legacy = DragPredictor(DragModelConfig(**{**SMALL.__dict__, "segmentation": "vote", "moves_head": False}))
    path = save_checkpoint(tmp_path / "old.pt", legacy, [])
    state = torch.load(path, weights_only=False)
    del state["config"]["moves_head"], state["config"]["embed_dim"]  # written before those heads existed
    torch.save(state, path)
    loaded, _ = load_checkpoint(path)
    assert loaded.cfg.segmentation == "vote" and not loaded.cfg.moves_head


def test_model_shapes_batching_and_ablation():
    torch.manual_seed(0)
    pts, cols = torch.rand(3, 512, 3), torch.rand(3, 512, 3)
    start, vec = pts[:, 7], torch.randn(3, 3) * 0.1
    for ms in (True, False):
        model = DragPredictor(DragModelConfig(**{**SMALL.__dict__, "multiscale": ms})).eval()
        out = model(pts, cols, start, vec)
        assert out.displacement.shape == (3, 512, 3) and out.moving_logit.shape == (3, 512)
        assert out.joint_logit.shape == (3, 2) and torch.allclose(out.axis.norm(dim=-1), torch.ones(3))
        many = model.predict_many(pts[0], cols[0], start[:1].expand(4, 3), torch.randn(4, 3) * 0.1)
        single = model(pts[:1].expand(4, -1, -1), cols[:1].expand(4, -1, -1), start[:1].expand(4, 3),
                       many.amount.new_zeros(4, 3) + 0)  # shapes only below
        assert many.displacement.shape == single.displacement.shape == (4, 512, 3)
        assert len(model.drag_mlps) == (4 if ms else 1)
    flow = DragPredictor(DragModelConfig(**{**SMALL.__dict__, "decoder": "flow"}))
    assert flow(pts, cols, start, vec).displacement.shape == (3, 512, 3)


def test_predict_many_equals_batched_forward():
    torch.manual_seed(1)
    model = DragPredictor(SMALL).eval()
    pts, cols = torch.rand(512, 3), torch.rand(512, 3)
    starts, vecs = pts[:5], torch.randn(5, 3) * 0.1
    many = model.predict_many(pts, cols, starts, vecs)
    with torch.inference_mode():
        batched = model(pts.expand(5, -1, -1), cols.expand(5, -1, -1), starts, vecs)
    assert torch.allclose(many.displacement, batched.displacement, atol=1e-5)


def test_mask_refinement_by_hand():
    """Three points in a row, the middle one the colour of the left: one mean-field step averages
    each point's probability over its neighbours, weighted by distance and colour (by hand)."""
    cfg = MaskRefinement(iterations=1, sigma_xyz=0.1, sigma_rgb=0.1)
    xyz = torch.tensor([[[0.0, 0, 0], [0.05, 0, 0], [0.1, 0, 0]]])
    rgb = torch.tensor([[[1.0, 0, 0], [1.0, 0, 0], [0.0, 1, 0]]])
    groups = torch.tensor([[[0, 1, 2], [0, 1, 2], [0, 1, 2]]])
    p = torch.tensor([[1.0, 0.2, 0.0]])
    dense = smoothing_stencil(xyz, rgb, groups, cfg).dense()[0]
    w = torch.exp(-0.5 * (torch.cdist(xyz[0], xyz[0]) ** 2 / 0.01 + torch.cdist(rgb[0], rgb[0]) ** 2 / 0.01))
    assert torch.allclose(dense, w / w.sum(-1, keepdim=True), atol=1e-6)
    out = refine_probability(p, smoothing_stencil(xyz, rgb, groups, cfg), 1)
    assert torch.allclose(out, p @ (w / w.sum(-1, keepdim=True)).T, atol=1e-6)
    assert out[0, 1] > 0.5 > p[0, 1]  # pulled to the neighbour of its own colour
    assert out[0, 2] < 0.01  # the other colour barely listens


def test_stencil_gather_and_sparse_forms_match_by_hand():
    """Two output points from three source points: row 0 = 0.25 x0 + 0.75 x2, row 1 = x1 (by hand);
    the sparse product (eager) and the gather form (compiled) agree, for one cloud per drag and
    for one cloud shared by several drags."""
    idx = torch.tensor([[[0, 2], [1, 1]]])
    w = torch.tensor([[[0.25, 0.75], [0.5, 0.5]]])
    st = Stencil(idx, w, cols=3)
    x = torch.tensor([[[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]]])
    expect = torch.tensor([[[2.5, 25.0], [2.0, 20.0]]])
    assert torch.allclose(st.by_sparse(x), expect) and torch.allclose(st.by_gather(x), expect)
    assert torch.allclose(st.dense()[0], torch.tensor([[0.25, 0.0, 0.75], [0.0, 1.0, 0.0]]))
    gen = torch.Generator().manual_seed(0)
    many = torch.randn(4, 3, 2, generator=gen)  # four drags on the one cloud
    assert torch.allclose(st.by_sparse(many), st.by_gather(many), atol=1e-6)
    two = Stencil(torch.randint(0, 5, (2, 7, 3), generator=gen), torch.rand(2, 7, 3, generator=gen), cols=5)
    xs = torch.randn(2, 5, 4, generator=gen)
    assert torch.allclose(two.by_sparse(xs), two.by_gather(xs), atol=1e-6)
    assert torch.allclose(two.by_sparse(xs), two.dense() @ xs, atol=1e-6)


def test_recentred_membership_recovers_a_part_dragged_at_its_edge():
    """1-D part codes: part A spread over [-0.45, 0.45] plus an edge point at 0.7 (the drag point),
    part B at 2.0. From the edge point's code a radius-1 ball misses A's points below -0.3; one
    re-estimate of the code (the membership-weighted mean inside the ball) takes all of A and
    still none of B."""
    a = torch.linspace(-0.45, 0.45, 10)
    code = torch.cat([a, torch.tensor([0.7]), torch.full((5,), 2.0)])[None, :, None]  # (1, 16, 1)
    on_a = torch.arange(16) < 11
    movable = torch.full((1, 16), 8.0)
    w = torch.zeros(1, 16)
    w[0, 10] = 1.0  # the drag is on the edge point
    logit0, _ = DragPredictor._membership(code, 1.0, movable, w, recentre=0)
    logit1, member1 = DragPredictor._membership(code, 1.0, movable, w, recentre=1)
    assert torch.equal(logit0[0] > 0, on_a & (code[0, :, 0] > -0.3))
    assert torch.equal(logit1[0] > 0, on_a)
    inside = torch.sigmoid(8 * (1 - (code[0, :, 0] - 0.7).abs()))[on_a & (code[0, :, 0] > -0.3)]
    centre = (inside * code[0, :, 0][on_a & (code[0, :, 0] > -0.3)]).sum() / inside.sum()  # by hand
    assert torch.allclose(member1[0], (8 * (1 - (code[0, :, 0] - centre).abs())).clamp_min(-8), atol=1e-4)


def test_refined_eval_output_is_a_rigid_part_motion():
    """In eval mode the refined mask moves with the joint motion, unscaled; in training the soft gate."""
    torch.manual_seed(2)
    model = DragPredictor(SMALL)
    pts, cols = torch.rand(1, 512, 3), torch.rand(1, 512, 3)
    start, vec = pts[:, 0], torch.full((1, 3), 0.05)
    soft = model(pts, cols, start, vec)
    assert torch.allclose(soft.displacement, soft.gate * soft.kin_motion)
    with torch.inference_mode():
        hard = model.eval()(pts, cols, start, vec)
        plain = DragPredictor(SMALL, refinement=None).eval()
        plain.load_state_dict(model.state_dict())
        unrefined = plain(pts, cols, start, vec)
    moving = (hard.moving_logit > 0) & (hard.moves_logit > 0)[:, None]
    assert torch.equal(hard.displacement, moving[..., None] * hard.kin_motion)
    assert torch.allclose(unrefined.displacement, unrefined.gate * unrefined.kin_motion)
    assert not torch.allclose(hard.moving_logit, unrefined.moving_logit)


def test_small_model_overfits_tiny_dataset(tiny_data, tmp_path):
    """Real two-stage Lightning training on the 8 drags of one rendered cloud (flow decoder: the
    kinematic one needs more stage-2 steps than a unit test affords; the full run covers it)."""
    torch.manual_seed(0)
    split = load_split(tiny_data[0], "train").subset(8)
    model = DragPredictor(DragModelConfig(**{**SMALL.__dict__, "decoder": "flow"}))
    split.attach_neighbors(model)
    before = evaluate(learned(model), split)
    ckpt = tmp_path / "drag.pt"
    cfg = TrainConfig(stage1_epochs=90, stage2_epochs=10, batch_size=8, lr=5e-3, stage2_lr=2e-3, augment=False)
    history = train_two_stage(model, split, cfg, checkpoint=ckpt)
    after = evaluate(learned(model), split)
    stage1 = [h for h in history if h["stage"] == 1]
    assert stage1[-1]["loss"] < stage1[0]["loss"] / 2.5, (stage1[0]["loss"], stage1[-1]["loss"])
    assert after["epe"] < 0.6 * before["epe"] and after["epe"] < evaluate(rigid, split)["epe"] / 5, (before, after)
    assert after["part_iou"] > 0.5 > before["part_iou"]
    assert {h["stage"] for h in history} == {1, 2}
    loaded, state = load_checkpoint(ckpt)
    assert state["complete"] and len(state["history"]) == len(history)
    batch = split.batch(torch.arange(4))
    with torch.inference_mode():
        a = model(batch["points"], batch["colors"], batch["start"], batch["vec"]).displacement
        b = loaded(batch["points"], batch["colors"], batch["start"], batch["vec"]).displacement
    assert torch.allclose(a, b)
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temp files


class Interrupt(RuntimeError):
    pass


def test_interrupted_training_resumes_after_last_epoch(tiny_data, tmp_path):
    """Killed in stage 2, the next call with the same settings runs only the epochs left."""
    split = load_split(tiny_data[0], "train").subset(8)
    cfg = TrainConfig(stage1_epochs=2, stage2_epochs=3, batch_size=4, augment=False)
    ckpt = tmp_path / "drag.pt"
    seen: list[int] = []

    def stop_after_three(stage: int, losses: dict) -> None:
        seen.append(stage)
        if len(seen) == 3:
            raise Interrupt

    torch.manual_seed(0)
    with pytest.raises(Interrupt):
        train_two_stage(DragPredictor(SMALL), split, cfg, checkpoint=ckpt, on_epoch=stop_after_three)
    saved, state = load_checkpoint(ckpt)
    assert not state.get("complete") and [h["stage"] for h in state["history"]] == [1, 1, 2]
    lightning_state = torch.load(resume_path(ckpt, 2), map_location="cpu", weights_only=False)
    assert lightning_state["epoch"] == 0 and lightning_state["optimizer_states"]  # stage 2, after its epoch 1
    resumed: list[int] = []
    model = DragPredictor(SMALL)  # fresh weights: the checkpoint's are loaded
    history = train_two_stage(model, split, cfg, checkpoint=ckpt, on_epoch=lambda st, _: resumed.append(st))
    assert resumed == [2, 2]  # stage 2 epochs 2 and 3 only
    assert [h["stage"] for h in history] == [1, 1, 2, 2, 2] and history[:3] == state["history"]
    assert load_checkpoint(ckpt)[1]["complete"] and not list(tmp_path.glob("*.ckpt"))
    assert not list(tmp_path.glob(".*tmp"))


def test_drag_training_killed_with_sigkill_resumes_to_the_uninterrupted_result(tiny_data, tmp_path):
    """kill -9 of a real drag training (tests/drag_train_runner.py: 3 + 3 epochs, augmentation on) in stage 1,
    at the stage boundary and in stage 2, each time resumed: the same weights and losses, bitwise, as the run
    that was never killed (the checkpoint carries the augmentation and batch-order generators)."""
    import os
    import signal
    import time
    from pathlib import Path

    runner = Path(__file__).with_name("drag_train_runner.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def train(ckpt: Path, pause: float = 0.0) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, str(runner), str(tiny_data[0]), str(ckpt), str(pause)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    full = tmp_path / "full.pt"
    proc = train(full)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    ckpt = tmp_path / "killed.pt"
    for epochs in (1, 3, 4):  # killed after epoch 1 (stage 1), 3 (stage 1 done, stage 2 not begun), 4 (stage 2)
        proc, deadline = train(ckpt, pause=1.0), time.monotonic() + 240
        try:
            while time.monotonic() < deadline and proc.poll() is None:
                if ckpt.exists() and len(load_checkpoint(ckpt)[1]["history"]) >= epochs:  # (written atomically)
                    break
                time.sleep(0.02)
            assert proc.poll() is None, f"training ended before it could be killed: {proc.stderr.read()}"
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
        state = load_checkpoint(ckpt)[1]
        assert len(state["history"]) == epochs and not state.get("complete"), (epochs, state["history"])
    proc = train(ckpt)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    (a, sa), (b, sb) = load_checkpoint(full), load_checkpoint(ckpt)
    assert sa["complete"] and sb["complete"] and sa["history"] == sb["history"]
    assert [h["stage"] for h in sb["history"]] == [1, 1, 1, 2, 2, 2]
    for (k, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(va, vb), k
    assert not list(tmp_path.glob("*.ckpt")) and not list(tmp_path.glob(".*tmp"))


def test_a_kill_between_an_epochs_two_writes_resumes_as_if_uninterrupted(tiny_data, tmp_path):
    """An epoch writes the stage's Lightning state, then the model checkpoint (the commit). Killed in between,
    the model checkpoint holds the epoch before, whose Lightning state is kept beside the new one: the resumed
    run still ends bitwise as the uninterrupted one."""
    import shutil

    split = load_split(tiny_data[0], "train").subset(8)
    cfg = TrainConfig(stage1_epochs=1, stage2_epochs=3, batch_size=4, augment=True)
    torch.manual_seed(0)
    full = train_two_stage(DragPredictor(SMALL), split, cfg, checkpoint=tmp_path / "full.pt")
    ckpt, before = tmp_path / "cut.pt", tmp_path / "epoch2.pt"
    seen: list[int] = []

    def kill_in_epoch_three(stage: int, losses: dict) -> None:
        seen.append(stage)
        if len(seen) == 2:
            shutil.copy(ckpt, before)  # the model checkpoint of epoch 2, as a kill before epoch 3's would leave it
        if len(seen) == 3:
            raise Interrupt

    torch.manual_seed(0)
    with pytest.raises(Interrupt):
        train_two_stage(DragPredictor(SMALL), split, cfg, checkpoint=ckpt, on_epoch=kill_in_epoch_three)
    shutil.copy(before, ckpt)
    assert torch.load(resume_path(ckpt, 2), map_location="cpu", weights_only=False)["epoch"] == 1  # epoch 3's
    resumed = train_two_stage(DragPredictor(SMALL), split, cfg, checkpoint=ckpt)
    assert resumed == full
    for (k, a), (_, b) in zip(load_checkpoint(tmp_path / "full.pt")[0].state_dict().items(),
                              load_checkpoint(ckpt)[0].state_dict().items()):
        assert torch.equal(a, b), k
    assert not list(tmp_path.glob("*.ckpt"))


def test_batches_collate(tiny_data):
    split = load_split(tiny_data[0], "train")
    ds = DragBatches(split, augment=True)
    batch = ds.collate([0, 3, 5])
    assert batch["points"].shape == (3, 512, 3) and batch["colors"].max() <= 1.0


@pytest.mark.parametrize("args, fragment", [(["--objects", "0"], "--objects"), (["--cameras", "9"], "--cameras"),
                                            ([], "--out")])
def test_datagen_bad_arguments_one_line_exit_2(tmp_path, args, fragment):
    out = [] if fragment == "--out" else ["--out", str(tmp_path / "d")]
    proc = subprocess.run([sys.executable, "-m", "robocl.drag.datagen", *out, *args], capture_output=True, text=True)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and fragment in proc.stderr
    assert not (tmp_path / "d").exists()


def test_iou_by_size_bins_drags_by_their_true_moving_points():
    from robocl.drag.evaluate import iou_by_size

    scores = {"moving": torch.tensor([0.0, 10, 49, 50, 150, 500, 900]),
              "part_iou": torch.tensor([1.0, 0.5, 0.3, 0.8, 0.9, 0.95, 0.85])}
    assert iou_by_size(scores) == [
        {"moving_points": "0-49", "drags": 3, "part_iou": pytest.approx(0.6)},
        {"moving_points": "50-99", "drags": 1, "part_iou": pytest.approx(0.8)},
        {"moving_points": "100-199", "drags": 1, "part_iou": pytest.approx(0.9)},
        {"moving_points": "400+", "drags": 2, "part_iou": pytest.approx(0.9)}]  # the empty 200-399 bin left out


def test_a_val_split_is_generated_apart_and_leaves_the_other_splits_as_they_were():
    from robocl.drag.datagen import DatagenConfig, object_plan

    without = object_plan(DatagenConfig(objects=6, heldout_objects=2, seed=4))
    plan = object_plan(DatagenConfig(objects=6, heldout_objects=2, val_objects=3, seed=4))
    assert plan[:len(without)] == without  # train and test objects unchanged (their seed streams come first)
    val = [o for o in plan if o["split"] == "val"]
    assert len(val) == 3 and {o["category"] for o in val} <= {"cabinet", "drawer_unit"}
    assert not {o["seed"] for o in val} & {o["seed"] for o in without}
