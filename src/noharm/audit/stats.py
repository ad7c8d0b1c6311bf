"""Exact paired tests for classifiers."""
from __future__ import annotations

import numpy as np
from scipy.stats import binomtest


def mcnemar_exact(correct0: np.ndarray, correctp: np.ndarray,
                  alternative: str = "two-sided") -> tuple[int, int, float]:
    """Exact McNemar test on paired correctness.

    ``b`` = rows h0 gets right and hp wrong, ``c`` = rows h0 gets wrong and hp right.
    Under H0 (equal error rates) b ~ Binomial(b + c, 1/2).

    Parameters
    ----------
    correct0, correctp : boolean arrays, per row.
    alternative : "two-sided"; "greater" tests H1: hp is worse (b > c); "less": hp is better.

    Returns
    -------
    (b, c, p-value); p = 1 when b + c = 0.
    """
    c0 = np.asarray(correct0, bool)
    cp = np.asarray(correctp, bool)
    b = int(np.sum(c0 & ~cp))
    c = int(np.sum(~c0 & cp))
    if b + c == 0:
        return b, c, 1.0
    return b, c, float(binomtest(b, b + c, 0.5, alternative=alternative).pvalue)


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
