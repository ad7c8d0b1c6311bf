"""Intervals over repeated outer splits, in one place (DESIGN §9).

Outer splits overlap (each trains on most of the same rows), so the spread of their
estimates understates the uncertainty.  The corrected resampled t-interval of Nadeau &
Bengio (2003, *Inference for the generalization error*, Machine Learning 52) inflates
the variance of the J split estimates by ``(1/J + n_test/n_train)`` instead of ``1/J``.
"""
from __future__ import annotations

import numpy as np
from scipy import stats


def corrected_t_interval(values: np.ndarray, test_train_ratio: float = 0.0,
                         level: float = 0.95) -> tuple[float, float]:
    """Interval for the mean of per-split estimates ``values`` (NaN with fewer than two).

    ``test_train_ratio`` = n_test / n_train of one split; 0 gives the plain t-interval.
    """
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if len(v) < 2:
        return float("nan"), float("nan")
    se = np.sqrt(v.var(ddof=1) * (1 / len(v) + test_train_ratio))
    half = stats.t.ppf(0.5 + level / 2, len(v) - 1) * se
    return float(v.mean() - half), float(v.mean() + half)


__all__ = ["corrected_t_interval"]
