"""Batched point-cloud tensor operations shared by the network and its mask refinement."""

from __future__ import annotations

import torch
from torch import Tensor


def knn(query: Tensor, ref: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Distances and indices (B,M,k) of the k nearest `ref` points (B,R,3) to each query (B,M,3).

    Ranks squared distances from one batched matmul (what `torch.cdist` computes at these sizes,
    without its square root and copies over the whole matrix: ~2x faster); the square root is
    taken of the k kept only."""
    sq = torch.baddbmm((ref * ref).sum(-1)[:, None], query, ref.transpose(1, 2), alpha=-2.0)
    sq += (query * query).sum(-1)[..., None]
    d2, idx = sq.topk(k, dim=-1, largest=False)
    return d2.clamp_min(0.0).sqrt(), idx


def gather(x: Tensor, idx: Tensor) -> Tensor:
    """x (B,R,C) at idx (B,M,k) -> (B,M,k,C); an idx of batch 1 is shared by all B.

    One `index_select` on the flattened rows (`torch.gather` with an expanded index is ~20x slower
    here: 1.9 vs 0.1 ms for 2,048 x 16 rows of 32, measured)."""
    b, r, c = x.shape
    m, k = idx.shape[1], idx.shape[2]
    offsets = torch.arange(b, device=idx.device)[:, None] * r
    flat = (idx.reshape(idx.shape[0], m * k) + offsets).reshape(-1)
    return x.reshape(b * r, c).index_select(0, flat).view(b, m, k, c)


def block_csr(idx: Tensor, values: Tensor, cols: int) -> Tensor:
    """The block-diagonal sparse CSR matrix (G*N, G*cols) whose row i of block g holds `values`
    (G,N,k) at columns `idx` (G,N,k) of that block: k entries per row, one block per cloud."""
    g, n, k = idx.shape
    flat = (idx + torch.arange(g, device=idx.device)[:, None, None] * cols).reshape(-1)
    crow = torch.arange(0, g * n * k + 1, k, device=idx.device)
    return torch.sparse_csr_tensor(crow, flat, values.reshape(-1), (g * n, g * cols), check_invariants=False)


def interpolate(matrix: Tensor, x: Tensor) -> Tensor:
    """Apply a sparse (G*n, G*m) interpolation to features x (B,m,C); G is B or 1 (shared cloud)."""
    b, m, c = x.shape
    groups = matrix.shape[1] // m
    n = matrix.shape[0] // groups
    if groups == b:
        return (matrix @ x.reshape(b * m, c)).view(b, n, c)
    out = matrix @ x.permute(1, 0, 2).reshape(m, b * c)  # one cloud, many drags
    return out.view(n, b, c).permute(1, 0, 2)
