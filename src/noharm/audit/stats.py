"""Verdicts of the audit (the tests themselves live in :mod:`noharm.inference`)."""
from __future__ import annotations

import numpy as np

from ..inference import mcnemar_exact

__all__ = ["mcnemar_exact", "verdicts"]


def verdicts(bop_low: np.ndarray, bop_high: np.ndarray, pvalue: np.ndarray | None,
             bop: np.ndarray, alpha: float = 0.05) -> list[str]:
    """``helps`` / ``harms`` / ``cannot tell`` per group.

    Classification (``pvalue`` given, exact McNemar on the 0-1 loss): a significant test
    decides, in the direction of the BoP.  Regression (no p-value): the bootstrap CI of
    the BoP decides (entirely above 0: helps; entirely below: harms).
    """
    out = []
    for i in range(len(bop)):
        if pvalue is not None:
            sig = pvalue[i] < alpha
            out.append("cannot tell" if not sig or bop[i] == 0 else
                       ("helps" if bop[i] > 0 else "harms"))
        else:
            out.append("helps" if bop_low[i] > 0 else "harms" if bop_high[i] < 0
                       else "cannot tell")
    return out
