"""Differentiable proxies of the bias metrics: Ŷ replaced by the predicted probability."""
from __future__ import annotations

import torch


def _mean(p: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (p * mask).sum(-1) / mask.sum(-1).clamp(min=1)


def spd_proxy(proba: torch.Tensor, protected: torch.Tensor) -> torch.Tensor:
    """E[p | A=0] - E[p | A=1] over all rows (last axis); differentiable in ``proba``."""
    a = protected.to(proba.dtype)
    return _mean(proba, 1 - a) - _mean(proba, a)


def eod_proxy(proba: torch.Tensor, protected: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """E[p | A=0, Y=1] - E[p | A=1, Y=1]; differentiable in ``proba``."""
    a = protected.to(proba.dtype)
    pos = (y == 1).to(proba.dtype)
    return _mean(proba, (1 - a) * pos) - _mean(proba, a * pos)
