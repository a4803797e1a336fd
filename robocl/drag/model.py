"""PointNet++-style part-level drag predictor with a multi-scale drag embedding (plain PyTorch).

Input: a point cloud (B,N,3) in FPS order with colours (B,N,3), and one drag per cloud (start
point and vector, (B,3) each). Set abstraction (SA) level l takes the first n_l points as centres
(the FPS prefix property, so no sampling at run time), groups k nearest neighbours within radius
r_l (a batched matmul + topk) and max-pools a shared MLP. Feature propagation (FP) interpolates back
to every point (3-NN inverse distance, a `robocl.drag.ops.Stencil`) with skip connections. Neighbour
indices depend on the cloud only (and not on a rotation or shift of it), so training caches them
per cloud and a planner computes them once for all the drags it tries on one cloud.

Multi-scale drag embedding (the point-cloud analogue of PartRM's per-resolution injection): the
drag's start and vector are Fourier-encoded; one small MLP per level (input points and every SA
level) maps the code to that level's width, and the result is *added* to the level's features
weighted by exp(-|c - start|^2 / 2 sigma_l^2), sigma_l growing with the level's radius: the drag
conditions local features around the grasp and, coarser, the whole object. `multiscale=False`
(the ablation) adds one global drag embedding to the coarsest level only.

Heads. Per point (from its features and the features at the drag point): a 3-D flow, whether the
point is on a movable part, a vote for its part's centre and a part-instance embedding; a point
moves iff it and the drag point are on a movable part and their embeddings are close
(`segmentation="embed"`, trained with a discriminative pull/push loss; "vote" = the part-centre
votes agree, which fails at a large part's far end where the vote is a long offset: measured;
"free" = a plain logit). Per drag (features pooled over the dragged part and at the drag point,
global feature, drag code): joint type (prismatic / revolute), axis, the feasible range of motion
and whether the drag moves anything at all (against a joint limit it does not); the pivot (a
point on the hinge line) is the part-pooled average of per-point hinge votes.
`decoder="kinematic"` (default) turns the joint estimate into per-point displacement: the drag
is projected on the joint's motion (translation along the axis, or the rotation about the hinge
line that brings the grasped point nearest the drag's end), clamped to the predicted range,
applied to every point and gated by its moving probability, so a part moves rigidly.
`decoder="flow"` uses the flow head instead (free-form per-point motion, as in PartRM).
In eval mode the dragged part's code is re-estimated from the points first assigned to it, and
the moving probability is refined by a bilateral mean field over each point's neighbours
(robocl.drag.refine; `refinement=None` turns both off).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robocl.drag.ops import Stencil, gather, interpolate, knn
from robocl.drag.refine import DEFAULT_REFINEMENT, MaskRefinement, refine_probability, smoothing_stencil

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")

# Discriminative embedding geometry (De Brabandere et al. 2017): points within EMBED_PULL of their
# part's mean, part means at least 2 * EMBED_PUSH apart; a point is on the dragged part when its
# embedding is within EMBED_RADIUS of the drag point's (between 2 * pull and 2 * push - 2 * pull).
EMBED_PULL, EMBED_PUSH, EMBED_RADIUS = 0.25, 1.0, 1.0


@dataclass(frozen=True)
class Level:
    centers: int
    k: int
    radius: float  # m, ball-query radius
    width: int  # output feature width
    sigma: float  # m, locality of this level's drag injection


@dataclass(frozen=True)
class DragModelConfig:
    """Architecture of the drag predictor (sized for one cloud and drag in under 20 ms on two CPU
    cores: 12.8 ms median compiled, 20.4 ms eager, over 5 processes with the mask refinement
    (robocl-bench suite=drag); 384 first-level centres instead of 512 took 30% off the forward
    pass, at the same `part_iou` in a pilot run)."""

    point_width: int = 32
    point_sigma: float = 0.05
    levels: tuple[Level, ...] = field(default=(
        Level(384, 16, 0.08, 64, 0.08),
        Level(128, 16, 0.2, 128, 0.2),
        Level(32, 16, 0.5, 256, 0.5),
    ))
    fp_width: int = 128
    out_width: int = 64
    fourier: int = 6
    drag_hidden: int = 64
    multiscale: bool = True
    decoder: str = "kinematic"  # "kinematic" | "flow"
    segmentation: str = "embed"  # "embed" | "vote" | "free"
    vote_radius: float = 0.06  # m, how close two part-centre votes must be to count as one part
    embed_dim: int = 8  # part-instance embedding width (segmentation="embed")
    moves_head: bool = True  # a per-drag "does this drag move anything" logit (joint limits, static body)
    flow_scale: float = 0.1  # m per unit of the raw flow output


def mlp(dims: list[int], last_act: bool = True) -> nn.Sequential:
    """Linear layers with LayerNorm + ReLU between them (LayerNorm: several times faster convergence
    than plain ReLU MLPs here, measured on a one-cloud segmentation fit)."""
    layers: list[nn.Module] = []
    for i in range(len(dims) - 1):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2 or last_act:
            layers += [nn.LayerNorm(dims[i + 1]), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def fourier_features(x: Tensor, n_freq: int) -> Tensor:
    """[x, sin(2^i pi x), cos(2^i pi x)] for i < n_freq (coordinates in metres)."""
    freqs = (2.0 ** torch.arange(n_freq, dtype=x.dtype, device=x.device)) * math.pi
    xf = (x[..., None] * freqs).flatten(-2)
    return torch.cat([x, torch.sin(xf), torch.cos(xf)], dim=-1)


def rotate(v: Tensor, axis: Tensor, angle: Tensor) -> Tensor:
    """Rodrigues: rotate vectors v (B,N,3) about unit axes (B,3) by angles (B,)."""
    a = axis[:, None]
    c, s = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    return v * c + torch.cross(a.expand_as(v), v, dim=-1) * s + a * (v * a).sum(-1, keepdim=True) * (1 - c)


@dataclass
class Neighbors:
    """Cloud-only index structure: grouping per SA level, 3-NN interpolation per FP step."""

    group_idx: list[Tensor]  # per SA level: (B, n_l, k) into the previous level
    up_idx: list[Tensor]  # per SA level l: (B, n_{l-1}, 3) nearest level-l centres
    up_w: list[Tensor]  # per SA level l: (B, n_{l-1}, 3) inverse-distance weights

    def select(self, rows: Tensor) -> Neighbors:
        return Neighbors([t[rows] for t in self.group_idx], [t[rows] for t in self.up_idx],
                         [t[rows] for t in self.up_w])


@dataclass
class Geometry:
    """What the network needs from a cloud besides colours (reusable across drags on one cloud)."""

    xyz: list[Tensor]  # per level: (G, n_l, 3) centred coordinates; level 0 = all points
    group_idx: list[Tensor]
    group_rel: list[Tensor]  # per SA level: (G, n_l, k, 3), offsets / radius
    interp: list[Stencil]  # per SA level l: 3-NN interpolation from n_l to n_{l-1} points
    point_groups: Tensor  # (G, N, k): the first-level group of each point's nearest first-level centre


class SetAbstraction(nn.Module):
    """Grouped shared MLP + max-pool. The first layer is split into a feature part (applied before
    gathering: R rows instead of M*k) and an offset part (cloud-only, broadcast over drags)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        hidden = c_out // 2
        self.lin_feat = nn.Linear(c_in, hidden)
        self.lin_rel = nn.Linear(3, hidden, bias=False)
        self.norm = nn.LayerNorm(hidden)
        self.rest = mlp([hidden, c_out])

    def forward(self, feat: Tensor, idx: Tensor, rel: Tensor) -> Tensor:
        h = gather(self.lin_feat(feat), idx) + self.lin_rel(rel)
        return self.rest(torch.relu(self.norm(h))).amax(dim=2)


class FeaturePropagation(nn.Module):
    """3-NN interpolation of coarse features + skip features -> MLP; the coarse side of the first
    layer is applied before interpolating (fewer rows)."""

    def __init__(self, c_up: int, c_skip: int, c_out: int) -> None:
        super().__init__()
        self.lin_up = nn.Linear(c_up, c_out)
        self.lin_skip = nn.Linear(c_skip, c_out, bias=False)
        self.norm = nn.LayerNorm(c_out)
        self.rest = mlp([c_out, c_out])

    def forward(self, up: Tensor, skip: Tensor, stencil: Stencil) -> Tensor:
        return self.rest(torch.relu(self.norm(interpolate(stencil, self.lin_up(up)) + self.lin_skip(skip))))


@dataclass
class DragOutput:
    displacement: Tensor  # (B,N,3) m
    moving_logit: Tensor  # (B,N)
    joint_logit: Tensor  # (B,2) prismatic, revolute
    axis: Tensor  # (B,3) unit
    pivot: Tensor  # (B,3) world frame, a point on the hinge line (revolute)
    amount: Tensor  # (B,2) joint displacement if prismatic (m) / revolute (rad)
    flow_motion: Tensor  # (B,N,3) ungated flow head: how each point moves if its part moves (m)
    kin_motion: Tensor  # (B,N,3) ungated kinematic decoding of the joint estimate (m)
    vote: Tensor  # (B,N,3) each point's estimate of its part's centre (world frame)
    movable_logit: Tensor  # (B,N) is the point on a movable part (whichever is dragged)
    embedding: Tensor | None = None  # (B,N,E) part-instance embedding (segmentation="embed")
    moves_logit: Tensor | None = None  # (B,) does the drag move anything (moves_head)

    @property
    def gate(self) -> Tensor:
        """(B,N,1) probability that each point moves: on the dragged part, and the drag moves it."""
        g = torch.sigmoid(self.moving_logit)[..., None]
        return g if self.moves_logit is None else g * torch.sigmoid(self.moves_logit)[:, None, None]

    def moving(self, threshold: float = 0.5, min_motion: float = 5e-4) -> Tensor:
        """Points that move: on the dragged part and displaced by more than `min_motion` metres
        (a drag against a joint limit moves nothing)."""
        mask = (torch.sigmoid(self.moving_logit) > threshold) & (self.displacement.norm(dim=-1) > min_motion)
        if self.moves_logit is not None:
            mask &= (self.moves_logit > 0)[:, None]
        return mask

    def joint_type(self) -> Tensor:
        return self.joint_logit.argmax(dim=-1)


class DragPredictor(nn.Module):
    """Predicts what a drag does to an articulated object, per point and per joint."""

    def __init__(self, cfg: DragModelConfig | None = None,
                 refinement: MaskRefinement | None = DEFAULT_REFINEMENT) -> None:
        super().__init__()
        self.cfg = cfg = cfg or DragModelConfig()
        # post-processing of the mask in eval mode (not part of the trained weights or cfg)
        self.refinement = refinement
        if cfg.decoder not in ("kinematic", "flow"):
            raise ValueError(f"decoder={cfg.decoder!r}: expected 'kinematic' or 'flow'")
        if cfg.segmentation not in ("embed", "vote", "free"):
            raise ValueError(f"segmentation={cfg.segmentation!r}: expected 'embed', 'vote' or 'free'")
        code = 2 * (3 + 6 * cfg.fourier) + 1
        widths = [cfg.point_width] + [lv.width for lv in cfg.levels]
        self.point_mlp = mlp([6, cfg.point_width, cfg.point_width])
        self.sa = nn.ModuleList(SetAbstraction(widths[i], widths[i + 1]) for i in range(len(cfg.levels)))
        inject_widths = widths if cfg.multiscale else widths[-1:]
        self.drag_mlps = nn.ModuleList(mlp([code, cfg.drag_hidden, w], last_act=False) for w in inject_widths)
        fp: list[nn.Module] = []
        up = widths[-1]
        for i in range(len(cfg.levels), 0, -1):
            out = cfg.out_width if i == 1 else cfg.fp_width
            fp.append(FeaturePropagation(up, widths[i - 1], out))
            up = out
        self.fp = nn.ModuleList(fp)
        ow = cfg.out_width
        self.query = nn.Linear(ow, ow, bias=False)  # features at the drag point, for every point
        # flow (3), free moving logit (1), on-a-movable-part logit (1), part-centre vote (3), hinge vote (3),
        # part embedding (embed_dim)
        self.embed_dim = cfg.embed_dim if cfg.segmentation == "embed" else 0
        self.point_head = mlp([ow, ow, 11 + self.embed_dim], last_act=False)
        # from [part-pooled, at-drag, global features, drag code]: type (2), axis (3), range (4: -lo, hi
        # for prismatic then revolute), moves anything (1)
        self.joint_head = mlp([2 * ow + widths[-1] + code, 128, 9 + int(cfg.moves_head)], last_act=False)
        self.sigmas = [cfg.point_sigma] + [lv.sigma for lv in cfg.levels]

    # -- geometry
    @torch.no_grad()
    def neighbors(self, xyz: Tensor) -> Neighbors:
        """Grouping and interpolation indices of clouds (B,N,3) in FPS order."""
        levels = [xyz]
        gidx, uidx, uw = [], [], []
        for lv in self.cfg.levels:
            prev = levels[-1]
            centers = prev[:, : lv.centers]
            dist, idx = knn(centers, prev, lv.k)
            gidx.append(torch.where(dist > lv.radius, idx[..., :1], idx))  # ball query: pad with the nearest
            d_up, i_up = knn(prev, centers, 3)
            w = 1.0 / (d_up + 1e-8)
            uidx.append(i_up)
            uw.append(w / w.sum(dim=-1, keepdim=True))
            levels.append(centers)
        return Neighbors(gidx, uidx, uw)

    def geometry(self, xyz: Tensor, nb: Neighbors | None = None) -> Geometry:
        """Geometry of centred clouds (G,N,3), from cached neighbours when given."""
        nb = nb if nb is not None else self.neighbors(xyz)
        levels, rel, interp = [xyz], [], []
        # (G, N, k): the first-level group of every point's nearest first-level centre
        point_groups = gather(nb.group_idx[0].long(), nb.up_idx[0][..., :1].long())[:, :, 0]
        for lv, idx, ui, uw in zip(self.cfg.levels, nb.group_idx, nb.up_idx, nb.up_w):
            prev = levels[-1]
            centers = prev[:, : lv.centers]
            rel.append((gather(prev, idx) - centers[:, :, None]) / lv.radius)
            interp.append(Stencil(ui, uw.to(xyz.dtype), lv.centers))
            levels.append(centers)
        return Geometry(levels, list(nb.group_idx), rel, interp, point_groups)

    def _inject(self, feat: Tensor, xyz: Tensor, start: Tensor, emb: Tensor, sigma: float | None) -> Tensor:
        if sigma is None:
            return feat + emb[:, None]
        w = torch.exp(-(xyz - start[:, None]).pow(2).sum(-1) / (2 * sigma * sigma))
        return feat + w[..., None] * emb[:, None]

    def forward(self, points: Tensor, colors: Tensor, start: Tensor, vec: Tensor,
                neighbors: Neighbors | None = None, geometry: Geometry | None = None) -> DragOutput:
        """points/colors (B,N,3), or (1,N,3) for B drags on one cloud; drags (B,3) in metres."""
        b = start.shape[0]
        center = points.mean(dim=1)
        xyz = points - center[:, None]
        geo = geometry if geometry is not None else self.geometry(xyz, neighbors)
        center_b = center.expand(b, 3)
        s = start - center_b
        code = torch.cat([fourier_features(s, self.cfg.fourier), fourier_features(vec, self.cfg.fourier),
                          vec.norm(dim=-1, keepdim=True)], dim=-1)
        f = self.point_mlp(torch.cat([xyz, colors], dim=-1))
        if f.shape[0] != b:
            f = f.expand(b, *f.shape[1:])
        ms = self.cfg.multiscale
        if ms:
            f = self._inject(f, geo.xyz[0], s, self.drag_mlps[0](code), self.sigmas[0])
        feats = [f]
        n_levels = len(self.cfg.levels)
        for i, sa in enumerate(self.sa):
            h = sa(feats[-1], geo.group_idx[i], geo.group_rel[i])
            if ms:
                h = self._inject(h, geo.xyz[i + 1], s, self.drag_mlps[i + 1](code), self.sigmas[i + 1])
            elif i == n_levels - 1:
                h = self._inject(h, geo.xyz[i + 1], s, self.drag_mlps[0](code), None)
            feats.append(h)
        glob = feats[-1].amax(dim=1)
        up = feats[-1]
        for j, fp in enumerate(self.fp):
            lvl = n_levels - j  # level lvl -> lvl-1
            up = fp(up, feats[lvl - 1], geo.interp[lvl - 1])
        # features at the drag point: a sharp distance softmax over the points
        w = torch.softmax(-(geo.xyz[0] - s[:, None]).pow(2).sum(-1) / (2 * 0.02**2), dim=1)
        at_drag = (w[..., None] * up).sum(dim=1)
        out = self.point_head(torch.relu(up + self.query(at_drag)[:, None]))
        movable = out[..., 4]
        vote = geo.xyz[0] + 0.3 * out[..., 5:8]
        embedding = out[..., 11:] if self.embed_dim else None
        post = self.refinement if not self.training else None  # inference-time post-processing
        recentre = post.recentre if post is not None else 0
        if embedding is not None:
            logit, member = self._membership(embedding, EMBED_RADIUS, movable, w, recentre)
        elif self.cfg.segmentation == "vote":
            logit, member = self._membership(vote, self.cfg.vote_radius, movable, w, recentre)
        else:
            logit = member = out[..., 3]
        refine = post is not None and post.iterations > 0
        if refine:
            cols = colors if colors.shape[0] == geo.xyz[0].shape[0] else colors.expand(geo.xyz[0].shape[0], -1, -1)
            smooth = smoothing_stencil(geo.xyz[0], cols, geo.point_groups, post)
            p = refine_probability(torch.sigmoid(logit), smooth, post.iterations)
            logit = torch.logit(p.clamp(1e-6, 1 - 1e-6))
        # part-level estimates pooled over the dragged part (vote agreement: defined on any drag)
        pool = torch.sigmoid(member)
        pool = pool / pool.sum(dim=1, keepdim=True).clamp_min(1e-6)
        part_feat = (pool[..., None] * up).sum(dim=1)
        pivot = (pool[..., None] * (geo.xyz[0] + 0.5 * out[..., 8:11])).sum(dim=1)
        j = self.joint_head(torch.cat([part_feat, at_drag, glob, code], dim=-1))
        axis = j[:, 2:5] / j[:, 2:5].norm(dim=-1, keepdim=True).clamp_min(1e-6)
        amount = self._amounts(s, vec, axis, pivot, j[:, 5:9])
        p = torch.softmax(j[:, :2], dim=-1)
        slide = axis[:, None] * amount[:, 0, None, None]
        r = geo.xyz[0] - pivot[:, None]
        turn = rotate(r, axis, amount[:, 1]) - r
        kin = p[:, 0, None, None] * slide + p[:, 1, None, None] * turn
        flow = out[..., :3] * self.cfg.flow_scale
        motion = kin if self.cfg.decoder == "kinematic" else flow
        moves = j[:, 9] if self.cfg.moves_head else None
        res = DragOutput(motion, logit, j[:, :2], axis, pivot + center_b, amount, flow, kin,
                         vote + center_b[:, None], movable, embedding, moves)
        if refine:  # a part-level answer: the refined mask moves rigidly with the joint's motion
            hard = logit > 0
            if moves is not None:
                hard &= (moves > 0)[:, None]
            res.displacement = hard[..., None] * motion
        else:  # the soft gate the losses train
            res.displacement = res.gate * motion
        return res

    @staticmethod
    def _membership(code: Tensor, radius: float, movable: Tensor, w: Tensor,
                    recentre: int = 0) -> tuple[Tensor, Tensor]:
        """Moving logit: a point moves iff it is on a movable part, the drag is on a movable part,
        and its part code (embedding or centre vote) is within `radius` of the code at the drag
        point: the product of the three probabilities (a soft minimum instead sends the whole mask
        loss into whichever term is lowest and stalls the others: measured). Also returns the code
        agreement alone. `recentre` > 0 (inference): the part's code is then re-estimated that
        many times as the membership-weighted mean over the points within `radius`, a steadier
        reference than the one code at the drag point, which may sit on a part's edge."""
        code_s = (w[..., None] * code).sum(dim=1)
        movable_s = (w * movable).sum(dim=1)
        member = DragPredictor._agreement(code, code_s, radius)
        for _ in range(recentre):
            inside = torch.sigmoid(member) * (member > 0)
            total = inside.sum(dim=1, keepdim=True)
            mean = (inside[..., None] * code).sum(dim=1) / total.clamp_min(1e-6)
            member = DragPredictor._agreement(code, torch.where(total > 0, mean, code_s), radius)
        log_p = -(F.softplus(-movable) + F.softplus(-member) + F.softplus(-movable_s)[:, None])
        log_not_p = torch.log((-torch.expm1(log_p)).clamp_min(1e-12))
        return log_p - log_not_p, member

    @staticmethod
    def _agreement(code: Tensor, ref: Tensor, radius: float) -> Tensor:
        """Logit that each point's code (B,N,E) is within `radius` of the reference code (B,E)."""
        d = ((code - ref[:, None]).pow(2).sum(-1) + 1e-10).sqrt()
        return (8.0 * (1.0 - d / radius)).clamp_min(-8.0)  # bounded: far codes teach nothing

    @staticmethod
    def _amounts(s: Tensor, vec: Tensor, axis: Tensor, pivot: Tensor, bounds: Tensor) -> Tensor:
        """Joint displacement the drag causes if prismatic / revolute, within the predicted range."""
        lim = F.softplus(bounds)
        slide = (vec * axis).sum(-1)
        r0 = s - pivot
        r1 = r0 + vec
        r0 = r0 - (r0 * axis).sum(-1, keepdim=True) * axis
        r1 = r1 - (r1 * axis).sum(-1, keepdim=True) * axis
        sin = (axis * torch.cross(r0, r1, dim=-1)).sum(-1)
        cos = (r0 * r1).sum(-1)
        turn = torch.atan2(sin, cos + 1e-9)
        slide = torch.maximum(torch.minimum(slide, lim[:, 1]), -lim[:, 0])
        turn = torch.maximum(torch.minimum(turn, lim[:, 3]), -lim[:, 2])
        return torch.stack([slide, turn], dim=-1)

    @torch.inference_mode()
    def predict_many(self, points: Tensor, colors: Tensor, starts: Tensor, vecs: Tensor) -> DragOutput:
        """Many drags (P,3) on one cloud (N,3): the cloud's geometry is computed once."""
        pts = points[None]
        geo = self.geometry(pts - pts.mean(dim=1, keepdim=True))
        return self(pts, colors[None], starts, vecs, geometry=geo)
