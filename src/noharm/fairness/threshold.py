"""Decision threshold that maximizes balanced accuracy on validation data."""
from __future__ import annotations

import numpy as np

from ..errors import GroupError


def best_threshold(y_true, proba, n_grid: int = 101) -> tuple[float, float]:
    """(threshold, balanced accuracy) over an ``n_grid``-point grid on [0, 1]; ties go to
    the threshold closest to 0.5.  Vectorised over the grid."""
    y = np.asarray(y_true).astype(int)
    p = np.asarray(proba, dtype=float)
    if len(np.unique(y)) < 2:
        raise GroupError("choosing a threshold by balanced accuracy needs both classes.")
    grid = np.linspace(0.0, 1.0, n_grid)
    pred = p[None, :] >= grid[:, None]
    tpr = pred[:, y == 1].mean(1)
    tnr = 1 - pred[:, y == 0].mean(1)
    ba = (tpr + tnr) / 2
    best = np.flatnonzero(np.isclose(ba, ba.max()))
    i = best[np.argmin(np.abs(grid[best] - 0.5))]
    return float(grid[i]), float(ba[i])
