"""Differentiable group-gap losses for attributes with two or more groups (FairGrad).

Rates are "soft": the predicted probability replaces Ŷ.  For an attribute with groups
g = 1..G, the loss is the worst pairwise gap, max_g rate_g - min_g rate_g, over the
groups present in the batch (a group without the needed rows is left out; with fewer
than two groups left the loss is 0):

* ``spd``: rate = mean probability;
* ``eod``: rate = soft TPR (mean probability over Y = 1);
* ``eqodds``: max(TPR gap, FPR gap) (soft FPR = mean probability over Y = 0).
"""
from __future__ import annotations

import torch

KINDS = ("eqodds", "eod", "spd")


def _gap(proba: torch.Tensor, onehot: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    w = onehot * rows.unsqueeze(-1)                       # (E, B, G)
    cnt = w.sum(1)                                        # (E, G)
    rate = (proba.unsqueeze(-1) * w).sum(1) / cnt.clamp(min=1)
    valid = cnt > 0
    hi = torch.where(valid, rate, torch.full_like(rate, -torch.inf)).max(-1).values
    lo = torch.where(valid, rate, torch.full_like(rate, torch.inf)).min(-1).values
    ok = valid.sum(-1) >= 2
    return torch.where(ok, hi - lo, torch.zeros_like(hi))


def group_gap_loss(proba: torch.Tensor, codes: torch.Tensor, y: torch.Tensor, n_groups: int,
                   kind: str = "eqodds") -> torch.Tensor:
    """Worst pairwise gap per member: ``proba``, ``codes``, ``y`` of shape (E, B) -> (E,)."""
    onehot = torch.nn.functional.one_hot(codes, n_groups).to(proba.dtype)
    if kind == "spd":
        return _gap(proba, onehot, torch.ones_like(proba))
    tpr = _gap(proba, onehot, (y == 1).to(proba.dtype))
    if kind == "eod":
        return tpr
    return torch.maximum(tpr, _gap(proba, onehot, (y == 0).to(proba.dtype)))
