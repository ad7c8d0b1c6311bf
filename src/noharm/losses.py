"""Per-row losses of predictions: the costs every benefit-of-personalization and guard
test is computed from (a low layer: the models, the guard and the audits all use it)."""
from __future__ import annotations

import numpy as np

from ._validation import check_choice

LOSSES = ("zero_one", "log_loss", "brier", "squared_error")


def pointwise_loss(y: np.ndarray, pred: np.ndarray, loss: str) -> np.ndarray:
    """Per-row loss.  Classification: ``pred`` = P(y = 1) (``brier``: (p - y)², the
    calibration-sensitive cost); regression: the prediction (``squared_error``)."""
    check_choice(loss, name="loss", choices=LOSSES)
    y = np.asarray(y, dtype=float)
    pred = np.asarray(pred, dtype=float)
    if loss == "zero_one":
        return ((pred >= 0.5).astype(float) != y).astype(float)
    if loss == "log_loss":
        p = np.clip(pred, 1e-7, 1 - 1e-7)
        return -(y * np.log(p) + (1 - y) * np.log(1 - p))
    return (pred - y) ** 2


__all__ = ["LOSSES", "pointwise_loss"]
