"""Ensemble building blocks: batched Linear, masked BatchNorm, dropout, MLP.

Activations have shape ``(E, B, F)``.  Rows of a batch may be padding: a
weight tensor ``w`` of shape ``(E, B)`` (1 = real row, 0 = padding) is passed
through the forward pass so that BatchNorm statistics, and the loss, only see
real rows.  Members therefore train exactly as if each had its own batches.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


def member_seeds_init(shape: tuple[int, ...], bound: float, seeds: Sequence[int]) -> torch.Tensor:
    """Uniform(-bound, bound) init, one independent generator per member seed."""
    out = torch.empty((len(seeds), *shape))
    for e, s in enumerate(seeds):
        g = torch.Generator().manual_seed(int(s))
        out[e] = (torch.rand(shape, generator=g) * 2.0 - 1.0) * bound
    return out


class EnsembleLinear(nn.Module):
    """``E`` independent linear maps, applied with one batched matmul.

    Initialised like :class:`torch.nn.Linear` (uniform in ±1/sqrt(fan_in)),
    with a separate generator per member so member ``e`` only depends on its
    own seed.
    """

    def __init__(self, seeds: Sequence[int], in_features: int, out_features: int):
        super().__init__()
        bound = 1.0 / math.sqrt(in_features)
        seeds = [int(s) for s in seeds]
        self.weight = nn.Parameter(member_seeds_init((in_features, out_features), bound, seeds))
        self.bias = nn.Parameter(member_seeds_init((1, out_features), bound,
                                                   [s + 7919 for s in seeds]))
        self.in_features = in_features
        self.out_features = out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (E, B, in) -> (E, B, out)
        return torch.baddbmm(self.bias, x, self.weight)


class MaskedBatchNorm(nn.Module):
    """BatchNorm1d per member and feature that ignores padded rows.

    In training mode the statistics are computed over the rows with weight 1
    only; running statistics (momentum 0.1, unbiased variance, as in
    :class:`torch.nn.BatchNorm1d`) are updated for members with at least two
    real rows.  In eval mode the running statistics are used.
    """

    def __init__(self, n_members: int, num_features: int, eps: float = 1e-5,
                 momentum: float = 0.1):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n_members, 1, num_features))
        self.bias = nn.Parameter(torch.zeros(n_members, 1, num_features))
        self.register_buffer("running_mean", torch.zeros(n_members, 1, num_features))
        self.register_buffer("running_var", torch.ones(n_members, 1, num_features))
        self.eps = eps
        self.momentum = momentum

    def forward(self, x: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
        if not self.training:
            xhat = (x - self.running_mean) * torch.rsqrt(self.running_var + self.eps)
            return xhat * self.weight + self.bias
        if w is None:
            w = torch.ones(x.shape[:2], dtype=x.dtype)
        w3 = w.unsqueeze(-1)                                # (E, B, 1)
        cnt = w3.sum(1, keepdim=True)                       # (E, 1, 1)
        denom = cnt.clamp(min=1.0)
        mean = (x * w3).sum(1, keepdim=True) / denom
        centred = x - mean
        var = (centred.square() * w3).sum(1, keepdim=True) / denom
        out = centred * torch.rsqrt(var + self.eps) * self.weight + self.bias
        with torch.no_grad():
            upd = (cnt >= 2).to(x.dtype) * self.momentum    # members that may update
            unbiased = var * cnt / (cnt - 1.0).clamp(min=1.0)
            self.running_mean.mul_(1 - upd).add_(upd * mean)
            self.running_var.mul_(1 - upd).add_(upd * unbiased)
        return out


def dropout(x: torch.Tensor, p: float, training: bool, generator: torch.Generator | None
            ) -> torch.Tensor:
    """Inverted dropout whose mask comes from an explicit generator (reproducible)."""
    if not training or p == 0.0:
        return x
    keep = torch.rand(x.shape, generator=generator) >= p
    return x * keep * (1.0 / (1.0 - p))


class EnsembleMLP(nn.Module):
    """``E`` MLPs: hidden blocks Linear -> BatchNorm -> ReLU -> Dropout, then a Linear head.

    ``forward(x, w, biases)`` returns ``(output, hidden)`` where ``hidden`` is the
    list of post-activation hidden outputs.  ``biases`` maps a hidden-layer
    index (negative = from the end, ``-1`` = last) to a tensor ``(E, B, H)``
    added to that layer's pre-activation (after BatchNorm, before ReLU): the
    conditional-bias modulation of DESIGN §3.
    """

    def __init__(self, seeds: Sequence[int], in_features: int, hidden: Sequence[int],
                 out_features: int, dropout: float = 0.2):
        super().__init__()
        seeds = [int(s) for s in seeds]
        dims = [in_features, *hidden]
        self.linears = nn.ModuleList(
            EnsembleLinear([s * 1000 + i for s in seeds], dims[i], dims[i + 1])
            for i in range(len(hidden)))
        self.norms = nn.ModuleList(MaskedBatchNorm(len(seeds), h) for h in hidden)
        self.head = EnsembleLinear([s * 1000 + 999 for s in seeds], dims[-1], out_features)
        self.p = float(dropout)
        self.generator: torch.Generator | None = None
        self.n_members = len(seeds)

    @property
    def depth(self) -> int:
        return len(self.linears)

    def forward(self, x: torch.Tensor, w: torch.Tensor | None = None,
                biases: dict[int, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        hidden: list[torch.Tensor] = []
        n = self.depth
        for i, (lin, bn) in enumerate(zip(self.linears, self.norms)):
            z = bn(lin(x), w)
            if biases:
                b = biases.get(i - n)
                if b is not None:
                    z = z + b
            x = dropout(torch.relu(z), self.p, self.training, self.generator)
            hidden.append(x)
        return self.head(x), hidden


class Standardize(nn.Module):
    """Per-member feature standardisation ``(x - mean) / scale`` with stored statistics."""

    def __init__(self, n_members: int, num_features: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_members, 1, num_features))
        self.register_buffer("scale", torch.ones(n_members, 1, num_features))

    def fit_rows(self, X: torch.Tensor, rows: Sequence) -> None:
        """Set member e's statistics from ``X[rows[e]]`` (constant columns get scale 1)."""
        with torch.no_grad():
            for e, r in enumerate(rows):
                sub = X[torch.as_tensor(r, dtype=torch.long)]
                self.mean[e, 0] = sub.mean(0)
                sd = sub.std(0, unbiased=False)
                self.scale[e, 0] = torch.where(sd > 1e-12, sd, torch.ones_like(sd))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.scale
