"""Loading a drag dataset (see robocl.drag.datagen for the format) into memory as torch tensors."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from robocl.drag.datagen import load_index
from robocl.drag.model import DragPredictor, Neighbors

CLOUD_FIELDS = ("points", "colors", "labels", "object")
DRAG_FIELDS = ("start", "vec", "part", "joint_type", "axis", "origin", "delta", "displacement", "moving")


@dataclass
class DragSplit:
    """One split: C clouds and D drags that refer to them by `state` (row in the cloud tensors)."""

    points: Tensor  # (C,N,3) float32
    colors: Tensor  # (C,N,3) float32 in [0,1]
    labels: Tensor  # (C,N) int64
    state: Tensor  # (D,)
    start: Tensor  # (D,3)
    vec: Tensor  # (D,3)
    part: Tensor  # (D,)
    joint_type: Tensor  # (D,) -1 static, 0 prismatic, 1 revolute
    axis: Tensor  # (D,3)
    origin: Tensor  # (D,3)
    delta: Tensor  # (D,)
    displacement: Tensor  # (D,N,3)
    moving: Tensor  # (D,N) bool
    object: Tensor  # (C,) object id
    neighbors: Neighbors | None = None  # per cloud, cached by `attach_neighbors`

    def __len__(self) -> int:
        return len(self.state)

    def subset(self, n_drags: int) -> DragSplit:
        """The first `n_drags` drags (clouds kept whole: they are shared)."""
        kw = {f.name: getattr(self, f.name) for f in fields(self)}
        for k in ("state", *DRAG_FIELDS):
            kw[k] = kw[k][:n_drags]
        return DragSplit(**kw)

    def take(self, drags: Tensor) -> DragSplit:
        """Drags `drags` with only the clouds they use (what a replay buffer of old drags keeps)."""
        clouds, state = torch.unique(self.state[drags], return_inverse=True)
        kw = {f.name: getattr(self, f.name) for f in fields(self)}
        for k in CLOUD_FIELDS:
            kw[k] = kw[k][clouds]
        for k in DRAG_FIELDS:
            kw[k] = kw[k][drags]
        kw["state"] = state
        kw["neighbors"] = None if self.neighbors is None else self.neighbors.select(clouds)
        return DragSplit(**kw)

    @staticmethod
    def concat(splits: list[DragSplit]) -> DragSplit:
        """One split of several (cloud indices re-based; cached neighbours dropped)."""
        offsets = torch.tensor([0] + [len(s.points) for s in splits[:-1]]).cumsum(0)
        kw = {k: torch.cat([getattr(s, k) for s in splits]) for k in (*CLOUD_FIELDS, *DRAG_FIELDS)}
        kw["state"] = torch.cat([s.state + int(o) for s, o in zip(splits, offsets)])
        return DragSplit(**kw)

    def batch(self, idx: Tensor) -> dict[str, Tensor]:
        """Inputs and targets of drags `idx` (a (B,) index tensor)."""
        s = self.state[idx]
        out = {"points": self.points[s], "colors": self.colors[s], "labels": self.labels[s],
               "start": self.start[idx], "vec": self.vec[idx], "displacement": self.displacement[idx],
               "moving": self.moving[idx], "joint_type": self.joint_type[idx], "axis": self.axis[idx],
               "origin": self.origin[idx], "part": self.part[idx], "delta": self.delta[idx]}
        if self.neighbors is not None:
            nb = self.neighbors.select(s)
            out["neighbors"] = Neighbors([t.long() for t in nb.group_idx], [t.long() for t in nb.up_idx], nb.up_w)
        return out

    def attach_neighbors(self, model: DragPredictor, chunk: int = 32) -> None:
        """Cache every cloud's neighbour indices (they do not change under yaw or shift)."""
        parts: list[Neighbors] = []
        for first in range(0, len(self.points), chunk):
            pts = self.points[first:first + chunk]
            nb = model.neighbors(pts - pts.mean(dim=1, keepdim=True))
            parts.append(Neighbors([t.int() for t in nb.group_idx], [t.int() for t in nb.up_idx], nb.up_w))
        self.neighbors = Neighbors(*(
            [torch.cat([getattr(p, name)[i] for p in parts]) for i in range(len(getattr(parts[0], name)))]
            for name in ("group_idx", "up_idx", "up_w")))


def load_split(root: Path, split: str) -> DragSplit:
    """Concatenate a split's shards; drag `state` indices are re-based onto the joined clouds."""
    index = load_index(root)
    if split not in index["splits"]:
        raise KeyError(f"{root}: no split {split!r}; have {sorted(index['splits'])}")
    parts: dict[str, list[np.ndarray]] = {}
    offset = 0
    for name in index["splits"][split]["shards"]:
        with np.load(Path(root) / name) as z:
            arrays = {k: z[k] for k in z.files}
        arrays["state"] = arrays["state"] + offset
        offset += len(arrays["points"])
        for k, v in arrays.items():
            parts.setdefault(k, []).append(v)
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    return DragSplit(
        points=torch.from_numpy(cat["points"]), colors=torch.from_numpy(cat["colors"]).float() / 255.0,
        labels=torch.from_numpy(cat["labels"]).long(), state=torch.from_numpy(cat["state"]).long(),
        start=torch.from_numpy(cat["start"]), vec=torch.from_numpy(cat["vec"]),
        part=torch.from_numpy(cat["part"]).long(), joint_type=torch.from_numpy(cat["joint_type"]).long(),
        axis=torch.from_numpy(cat["axis"]), origin=torch.from_numpy(cat["origin"]),
        delta=torch.from_numpy(cat["delta"]), displacement=torch.from_numpy(cat["displacement"]),
        moving=torch.from_numpy(cat["moving"]), object=torch.from_numpy(cat["object"]).long())


def rotate_z(batch: dict[str, Tensor], angle: Tensor) -> dict[str, Tensor]:
    """Rotate a batch about the vertical through each cloud's centroid (a yaw augmentation;
    cached neighbour indices stay valid)."""
    c, s = torch.cos(angle), torch.sin(angle)
    zero, one = torch.zeros_like(c), torch.ones_like(c)
    rot = torch.stack([c, -s, zero, s, c, zero, zero, zero, one], dim=-1).view(-1, 3, 3)
    center = batch["points"].mean(dim=1, keepdim=True)
    out = dict(batch)
    out["points"] = (batch["points"] - center) @ rot.transpose(1, 2) + center
    for k in ("start", "origin"):
        out[k] = ((batch[k][:, None] - center) @ rot.transpose(1, 2) + center)[:, 0]
    for k in ("vec", "axis"):
        out[k] = (batch[k][:, None] @ rot.transpose(1, 2))[:, 0]
    out["displacement"] = batch["displacement"] @ rot.transpose(1, 2)
    return out


class DragBatches(Dataset):
    """Map-style dataset of drags; `augment` adds a random yaw and a colour gain (training only)."""

    def __init__(self, split: DragSplit, augment: bool = False, max_yaw: float = math.pi / 6) -> None:
        self.split = split
        self.augment = augment
        self.max_yaw = max_yaw

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> int:
        return i

    def collate(self, idx: list[int]) -> dict[str, Tensor]:
        batch = self.split.batch(torch.as_tensor(idx))
        if self.augment:
            b = len(idx)
            batch = rotate_z(batch, (torch.rand(b) * 2 - 1) * self.max_yaw)
            gain = 0.8 + 0.4 * torch.rand(b, 1, 1)
            batch["colors"] = (batch["colors"] * gain).clamp(0, 1)
        return batch
