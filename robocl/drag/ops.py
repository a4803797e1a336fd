"""Batched point-cloud tensor operations shared by the network and its mask refinement."""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass
class Stencil:
    """A fixed-width linear map from m points to n points of each cloud: output row i of cloud g is
    sum_j weight[g, i, j] * x[g, idx[g, i, j]] (3-NN interpolation, mean-field smoothing).

    Why two forms: eager PyTorch runs it fastest as one sparse CSR product (built once, on first
    use, and kept for every later product on the same cloud), but sparse tensors break a
    `torch.compile` graph, so a compiled forward pass gathers the k rows instead, and the compiler
    fuses the gather and the weighted sum into one loop."""

    idx: Tensor  # (G, n, k) into the m source points of the same cloud
    weight: Tensor  # (G, n, k)
    cols: int  # m
    _csr: Tensor | None = field(default=None, repr=False)

    @property
    def csr(self) -> Tensor:
        """The block-diagonal sparse (G*n, G*m) matrix of the stencil."""
        if self._csr is None:
            self._csr = block_csr(self.idx, self.weight, self.cols)
        return self._csr

    def dense(self) -> Tensor:
        """(G, n, m) dense matrices (for tests and inspection)."""
        g, n, _ = self.idx.shape
        out = torch.zeros(g, n, self.cols, dtype=self.weight.dtype, device=self.weight.device)
        return out.scatter_add_(2, self.idx.long(), self.weight)

    def by_gather(self, x: Tensor) -> Tensor:
        """x (B,m,C) -> (B,n,C) as a gather of the k source rows and their weighted sum."""
        return (gather(x, self.idx) * self.weight[..., None]).sum(dim=2)

    def by_sparse(self, x: Tensor) -> Tensor:
        """x (B,m,C) -> (B,n,C) as one sparse product (G is B, or 1 for many drags on one cloud)."""
        b, m, c = x.shape
        n = self.idx.shape[1]
        if self.idx.shape[0] == b:
            return (self.csr @ x.reshape(b * m, c)).view(b, n, c)
        out = self.csr @ x.permute(1, 0, 2).reshape(m, b * c)
        return out.view(n, b, c).permute(1, 0, 2)


def interpolate(stencil: Stencil, x: Tensor) -> Tensor:
    """Apply a stencil of G clouds to features x (B,m,C); G is B or 1 (one cloud, many drags)."""
    return stencil.by_gather(x) if torch.compiler.is_compiling() else stencil.by_sparse(x)
