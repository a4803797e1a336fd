"""Drag dataset generation: `python -m robocl.drag.datagen --out DIR --objects N --seed S`.

For every sampled cabinet: a few joint states, one fused multi-view point cloud per state, and
several drags per cloud. A drag is a start point (a point of the cloud) and a 3-D vector; its
outcome follows `drag_to_delta`: the dragged part's joint moves along its feasible direction to
the point closest to the drag's end (clamped by the limits); a drag on the static body moves
nothing. Drags mostly follow the part's true motion plus sloppy noise (a person pulling a handle
roughly), sometimes a random direction.

Splits: `train` and `test_instance` (new object instances of the training categories, default
cabinet + drawer_unit) and `test_category` (a held-out category, default fridge).

On-disk format (`format: robocl.drag/1`)::

    DIR/index.json   {"format", "points", "cameras", "image_size", "sampling", "seed",
                      "states_per_object", "drags_per_state", "train_categories",
                      "heldout_categories", "splits": {split: {"shards": [file], "objects",
                      "states", "drags"}}, "objects": [{"split", "id", "category", "seed",
                      "shard", "parts": [{"kind", "hinge"}]}]}
    DIR/<split>_<k>.npz   (np.savez_compressed; S clouds, D drags in the shard; N points)
      per cloud:  points (S,N,3) float32 world frame [m]; colors (S,N,3) uint8;
                  labels (S,N) int16 (0 static body, k movable part k); object (S,) int32 (id in
                  `objects`); qpos (S,8) float32 joint positions (m | rad, zero padded)
      per drag:   state (D,) int32 (cloud row in this shard); start_index (D,) int32 (point of
                  the cloud the drag starts at); start (D,3), vec (D,3) float32 [m];
                  part (D,) int16 (label under the start point); joint_type (D,) int8
                  (-1 static, 0 prismatic, 1 revolute); axis (D,3), origin (D,3) float32 world
                  frame; delta (D,) float32 joint displacement [m | rad];
                  displacement (D,N,3) float32 [m]; moving (D,N) bool (points that move)

Clouds are in FPS order (see robocl_envs.pointcloud). Shards and the index are written
atomically; the index is written last, so a directory with an index is complete.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from robocl_envs.articulated import MAX_PARTS, CabinetEnv, drag_to_delta, sample_cabinet
from robocl_envs.pointcloud import part_motion
from tqdm import tqdm

from robocl.utils.args import OneLineParser, non_negative_int, positive_int
from robocl.utils.io import atomic_write, atomic_write_json

FORMAT = "robocl.drag/1"
SPLITS = ("train", "test_instance", "test_category", "val")  # val: training categories, generated apart


@dataclass(frozen=True)
class DatagenConfig:
    """What a dataset depends on (the index records it; a cache key hashes it)."""

    objects: int = 60  # training objects; held-out splits get `heldout_objects` each
    heldout_objects: int = 12
    val_objects: int = 0  # objects of the training categories for choosing settings (never trained on or tested)
    states: int = 3  # joint states (clouds) per object
    drags: int = 8  # drags per cloud
    points: int = 2048
    cameras: int = 3
    image_size: int = 160
    sampling: str = "fps"
    seed: int = 0
    train_categories: tuple[str, ...] = ("cabinet", "drawer_unit")
    heldout_categories: tuple[str, ...] = ("fridge",)
    shard_objects: int = 16
    static_fraction: float = 0.12  # drags that start on the static body


def object_plan(cfg: DatagenConfig) -> list[dict[str, Any]]:
    """(split, category, seed) of every object; seeds never collide across splits."""
    plan = []
    ss = np.random.SeedSequence(cfg.seed)
    # one seed stream per split (SeedSequence children by position): adding `val` last leaves the others' objects
    counts = {"train": cfg.objects, "test_instance": cfg.heldout_objects, "test_category": cfg.heldout_objects,
              "val": cfg.val_objects}
    for split, child in zip(SPLITS, ss.spawn(len(SPLITS))):
        cats = cfg.heldout_categories if split == "test_category" else cfg.train_categories
        seeds = child.generate_state(max(counts[split], 1))
        for i in range(counts[split]):
            plan.append({"split": split, "category": cats[i % len(cats)], "seed": int(seeds[i])})
    for i, obj in enumerate(plan):
        obj["id"] = i
    return plan


def sample_state(env: CabinetEnv, rng: np.random.Generator) -> np.ndarray:
    """Joint positions: each part closed with probability 0.4, else uniform in its range."""
    lo, hi = env.limits()
    q = rng.uniform(lo, hi)
    q[rng.random(len(q)) < 0.4] = 0.0
    return q


def sample_drag_vector(point: np.ndarray, frame, rng: np.random.Generator) -> np.ndarray:
    """Mostly the part's true motion toward a random target state plus noise, sometimes random."""
    if frame is None or rng.random() < 0.25:
        direction = rng.normal(size=3)
        return direction / np.linalg.norm(direction) * rng.uniform(0.03, 0.3)
    target = rng.uniform(frame.lo, frame.hi)
    labels = np.ones(1, dtype=np.int16)
    true = part_motion(point[None], labels, 1, frame.joint_type, frame.axis, frame.origin, target - frame.q)[0]
    sigma = 0.3 * np.linalg.norm(true) + 0.01
    vec = true + rng.normal(scale=sigma, size=3)
    norm = np.linalg.norm(vec)
    return vec * (0.35 / norm) if norm > 0.35 else vec


def generate_object(env: CabinetEnv, obj: dict[str, Any], cfg: DatagenConfig) -> dict[str, list]:
    """Clouds and drags of one object (lists of per-cloud / per-drag arrays)."""
    rng = np.random.default_rng(obj["seed"])
    spec = sample_cabinet(obj["seed"], obj["category"])
    env.reset(options={"spec": spec})
    out: dict[str, list] = {k: [] for k in ("points", "colors", "labels", "qpos", "drags")}
    for _ in range(cfg.states):
        env.set_state(sample_state(env, rng))
        pc = env.point_cloud(cfg.points, rng, sampling=cfg.sampling)
        q = np.zeros(MAX_PARTS, dtype=np.float32)
        q[: env.n_parts] = env.joint_state()
        out["points"].append(pc.points)
        out["colors"].append(pc.colors)
        out["labels"].append(pc.labels)
        out["qpos"].append(q)
        frames = {k: env.joint_frame(k) for k in range(1, env.n_parts + 1)}
        movable = [k for k in frames if (pc.labels == k).any()]
        drags = []
        for _ in range(cfg.drags):
            on_static = rng.random() < cfg.static_fraction or not movable
            part = 0 if on_static else int(rng.choice(movable))
            idx = int(rng.choice(np.flatnonzero(pc.labels == part)))
            start = pc.points[idx].astype(np.float64)
            frame = frames.get(part)
            vec = sample_drag_vector(start, frame, rng)
            if frame is None:
                delta, jt, axis, origin = 0.0, -1, np.zeros(3), np.zeros(3)
            else:
                delta = drag_to_delta(start, vec, frame.joint_type, frame.axis, frame.origin, frame.q,
                                      frame.lo, frame.hi)
                jt, axis, origin = frame.joint_type, frame.axis, frame.origin
            disp = part_motion(pc.points, pc.labels, part, jt, axis, origin, delta) if jt >= 0 else \
                np.zeros_like(pc.points)
            drags.append({"start_index": idx, "start": start, "vec": vec, "part": part, "joint_type": jt,
                          "axis": axis, "origin": origin, "delta": delta, "displacement": disp,
                          "moving": np.linalg.norm(disp, axis=1) > 1e-6})
        out["drags"].append(drags)
    return out


def _pack(objects: list[tuple[dict, dict]]) -> dict[str, np.ndarray]:
    """Stack the clouds and drags of several objects into one shard's arrays."""
    arrays: dict[str, list] = {k: [] for k in ("points", "colors", "labels", "qpos", "object")}
    drag_keys = ("start_index", "start", "vec", "part", "joint_type", "axis", "origin", "delta",
                 "displacement", "moving")
    drags: dict[str, list] = {k: [] for k in (*drag_keys, "state")}
    for obj, data in objects:
        for s in range(len(data["points"])):
            row = len(arrays["points"])
            for k in ("points", "colors", "labels", "qpos"):
                arrays[k].append(data[k][s])
            arrays["object"].append(obj["id"])
            for d in data["drags"][s]:
                drags["state"].append(row)
                for k in drag_keys:
                    drags[k].append(d[k])
    dtypes = {"points": np.float32, "colors": np.uint8, "labels": np.int16, "qpos": np.float32, "object": np.int32,
              "state": np.int32, "start_index": np.int32, "start": np.float32, "vec": np.float32, "part": np.int16,
              "joint_type": np.int8, "axis": np.float32, "origin": np.float32, "delta": np.float32,
              "displacement": np.float32, "moving": bool}
    return {k: np.asarray(v, dtype=dtypes[k]) for k, v in {**arrays, **drags}.items()}


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    def write(fh) -> None:
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        fh.write(buf.getvalue())

    atomic_write(path, write)


def generate(out: Path, cfg: DatagenConfig, progress: Callable[[int, int], None] | None = None,
             show_bar: bool = True) -> dict[str, Any]:
    """Write the dataset to `out`; returns the index. `progress(done, total)` is called per object."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plan = object_plan(cfg)
    env = CabinetEnv(cameras=cfg.cameras, image_size=(cfg.image_size, cfg.image_size))
    splits: dict[str, dict[str, Any]] = {s: {"shards": [], "objects": 0, "states": 0, "drags": 0} for s in SPLITS}
    bar = tqdm(total=len(plan), desc="drag dataset", unit="obj", disable=not show_bar)
    try:
        for split in SPLITS:
            members = [o for o in plan if o["split"] == split]
            for first in range(0, len(members), cfg.shard_objects):
                chunk = []
                name = f"{split}_{first // cfg.shard_objects:03d}.npz"
                for obj in members[first:first + cfg.shard_objects]:
                    data = generate_object(env, obj, cfg)
                    spec = env.spec
                    obj["shard"] = name
                    obj["parts"] = [{"kind": p.kind, "hinge": p.hinge} for p in spec.parts]
                    chunk.append((obj, data))
                    bar.update(1)
                    if progress:
                        progress(bar.n, len(plan))
                arrays = _pack(chunk)
                _save_npz(out / name, arrays)
                info = splits[split]
                info["shards"].append(name)
                info["objects"] += len(chunk)
                info["states"] += len(arrays["points"])
                info["drags"] += len(arrays["start"])
    finally:
        bar.close()
        env.close()
    index = {"format": FORMAT, "points": cfg.points, "cameras": cfg.cameras,
             "image_size": [cfg.image_size, cfg.image_size], "sampling": cfg.sampling, "seed": cfg.seed,
             "states_per_object": cfg.states, "drags_per_state": cfg.drags,
             "train_categories": list(cfg.train_categories), "heldout_categories": list(cfg.heldout_categories),
             "splits": splits, "objects": plan, "config": {k: (list(v) if isinstance(v, tuple) else v)
                                                            for k, v in cfg.__dict__.items()}}
    atomic_write_json(out / "index.json", index)
    return index


def load_index(root: Path) -> dict[str, Any]:
    index = json.loads((Path(root) / "index.json").read_text())
    if index.get("format") != FORMAT:
        raise ValueError(f"{root}: not a {FORMAT} dataset (format={index.get('format')!r})")
    return index


def main(argv: list[str] | None = None) -> None:
    p = OneLineParser(prog="python -m robocl.drag.datagen", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True, help="dataset directory")
    p.add_argument("--objects", type=positive_int, default=60, help="training objects")
    p.add_argument("--heldout-objects", type=positive_int, default=None,
                   help="objects per held-out split (default objects/5)")
    p.add_argument("--val-objects", type=non_negative_int, default=0,
                   help="objects of the training categories for validation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--states", type=positive_int, default=3, help="joint states (clouds) per object")
    p.add_argument("--drags", type=positive_int, default=8, help="drags per cloud")
    p.add_argument("--points", type=positive_int, default=2048)
    p.add_argument("--cameras", type=int, choices=range(3, 7), default=3, metavar="{3..6}")
    p.add_argument("--sampling", choices=["fps", "random"], default="fps")
    a = p.parse_args(argv)
    held = a.heldout_objects if a.heldout_objects is not None else max(2, a.objects // 5)
    cfg = DatagenConfig(objects=a.objects, heldout_objects=held, val_objects=a.val_objects, states=a.states,
                        drags=a.drags, points=a.points,
                        cameras=a.cameras, sampling=a.sampling, seed=a.seed)
    index = generate(a.out, cfg)
    for split, info in index["splits"].items():
        print(f"{split}: {info['objects']} objects, {info['states']} clouds, {info['drags']} drags")
    print(f"index: {a.out / 'index.json'}")


if __name__ == "__main__":
    main()
