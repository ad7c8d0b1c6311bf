"""Intervals and tests, in one place (DESIGN §9): used by every study, the audit and the
guard.

* :func:`corrected_t_interval` / :func:`corrected_t_test` — over repeated outer splits.
  Outer splits overlap (each trains on most of the same rows), so the spread of their
  estimates understates the uncertainty; the corrected resampled t of Nadeau & Bengio
  (2003, *Inference for the generalization error*, Machine Learning 52: 239-281)
  inflates the variance of the J split estimates by ``1/J + n_test/n_train`` instead of
  ``1/J``.
* :func:`paired_bootstrap` — one outer split: a bootstrap over the test rows of the
  per-row differences (the runs inside one split share their test rows, so they are not
  independent replicates).
* :func:`paired_mean_test` — one-sided paired t-test on per-row loss differences (the
  guard's default).
* :func:`mcnemar_exact` — exact McNemar on paired correctness.
* :func:`delong_test` — DeLong, DeLong & Clarke-Pearson (1988) test of two correlated
  AUROCs on the same rows.
* :func:`holm` — Holm's step-down adjustment (family-wise error).
* :func:`verdict` — helps / harms / cannot tell.
"""
from __future__ import annotations

import numpy as np
from scipy import stats


def corrected_t_interval(values: np.ndarray, test_train_ratio: float = 0.0,
                         level: float = 0.95) -> tuple[float, float]:
    """Interval for the mean of per-split estimates ``values`` (NaN with fewer than two).

    ``test_train_ratio`` = n_test / n_train of one split; 0 gives the plain t-interval.
    """
    v = _finite(values)
    if len(v) < 2:
        return float("nan"), float("nan")
    se = np.sqrt(v.var(ddof=1) * (1 / len(v) + test_train_ratio))
    if se == 0:
        return float(v.mean()), float(v.mean())
    half = stats.t.ppf(0.5 + level / 2, len(v) - 1) * se
    return float(v.mean() - half), float(v.mean() + half)


def corrected_t_test(values: np.ndarray, test_train_ratio: float = 0.0) -> float:
    """Two-sided p-value of H0: mean = 0 with the corrected resampled t (NaN with < 2)."""
    v = _finite(values)
    if len(v) < 2:
        return float("nan")
    se = np.sqrt(v.var(ddof=1) * (1 / len(v) + test_train_ratio))
    if se == 0:          # identical in every split: nothing to test (e.g. the same model)
        return float("nan") if v.mean() == 0 else 0.0
    t = v.mean() / se
    return float(2 * stats.t.sf(abs(t), len(v) - 1))


def paired_bootstrap(diff: np.ndarray, n_boot: int = 2000, level: float = 0.95,
                     random_state: int = 0, strata: np.ndarray | None = None
                     ) -> tuple[float, float, float]:
    """(ci_low, ci_high, two-sided p) of the mean of per-row differences ``diff`` by a
    percentile bootstrap over rows (within ``strata`` when given); p is twice the share
    of replicates on the far side of 0 (at least 1 / n_boot)."""
    d = np.asarray(diff, dtype=float)
    if len(d) < 2:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(random_state)
    if strata is None:
        idx = rng.integers(0, len(d), (n_boot, len(d)))
    else:
        parts = [np.flatnonzero(strata == s) for s in np.unique(strata)]
        idx = np.concatenate([p[rng.integers(0, len(p), (n_boot, len(p)))] for p in parts],
                             axis=1)
    means = d[idx].mean(1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    if np.all(d == 0):
        return 0.0, 0.0, float("nan")
    p = 2 * min(np.mean(means <= 0), np.mean(means >= 0))
    return float(low), float(high), float(min(1.0, max(p, 1 / n_boot)))


def paired_mean_test(diff: np.ndarray, margin: float = 0.0, level: float = 0.95
                     ) -> tuple[float, float, float, float]:
    """One-sided paired t-test of H0: mean(diff) <= -margin against H1: mean > -margin.

    ``diff`` = per-row loss of the reference minus loss of the candidate (positive: the
    candidate is better).  ``margin = 0`` tests superiority; ``margin > 0`` tests
    non-inferiority by ``margin``.  Returns (mean, lower one-sided bound at ``level``,
    two-sided CI upper end, p).  Fewer than two rows, or no variation, give p = 1 unless
    every difference exceeds the bound.
    """
    d = _finite(diff)
    if len(d) < 2:
        return float("nan"), float("nan"), float("nan"), 1.0
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    if sd == 0:
        return mean, mean, mean, (0.0 if mean > -margin else 1.0)
    se = sd / np.sqrt(len(d))
    t = (mean + margin) / se
    q = stats.t.ppf(level, len(d) - 1)
    high = mean + stats.t.ppf(0.5 + level / 2, len(d) - 1) * se
    return mean, mean - q * se, float(high), float(stats.t.sf(t, len(d) - 1))


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
    return b, c, float(stats.binomtest(b, b + c, 0.5, alternative=alternative).pvalue)


def delong_test(y: np.ndarray, p_ref: np.ndarray, p_cand: np.ndarray, margin: float = 0.0
                ) -> tuple[float, float, float]:
    """(AUROC(cand) - AUROC(ref), its standard error, one-sided p of H0: difference <=
    -margin) by DeLong's variance of two correlated AUROCs (DeLong et al. 1988); p = 1
    when a class has fewer than two rows."""
    y = np.asarray(y).astype(bool)
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    if len(pos) < 2 or len(neg) < 2:
        return float("nan"), float("nan"), 1.0
    v10, v01, auc = [], [], []
    for p in (np.asarray(p_ref, float), np.asarray(p_cand, float)):
        x, z = p[pos][:, None], p[neg][None, :]
        psi = (x > z) + 0.5 * (x == z)
        v10.append(psi.mean(1))
        v01.append(psi.mean(0))
        auc.append(psi.mean())
    s10, s01 = np.cov(np.vstack(v10)), np.cov(np.vstack(v01))
    var = ((s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / len(pos)
           + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / len(neg))
    diff = float(auc[1] - auc[0])
    if var <= 0:
        return diff, 0.0, (0.0 if diff > -margin else 1.0)
    se = float(np.sqrt(var))
    return diff, se, float(stats.norm.sf((diff + margin) / se))


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN entries stay NaN and do not count)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    if len(ok) == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adjusted, 1.0)
    return out


def verdict(effect: float, p_adjusted: float, alpha: float = 0.05) -> str:
    """``helps`` / ``harms`` when the adjusted p-value is below ``alpha`` (in the direction
    of the effect), else ``cannot tell``."""
    if np.isnan(p_adjusted) or np.isnan(effect) or p_adjusted >= alpha or effect == 0:
        return "cannot tell"
    return "helps" if effect > 0 else "harms"


def smallest_detectable(sd: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest mean difference a one-sided level-``alpha`` paired test on ``n`` rows
    with per-row sd ``sd`` detects with probability ``power`` (normal approximation)."""
    if n < 2 or not np.isfinite(sd):
        return float("inf")
    return float((stats.norm.ppf(1 - alpha) + stats.norm.ppf(power)) * sd / np.sqrt(n))


def _finite(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    return v[~np.isnan(v)]


__all__ = ["corrected_t_interval", "corrected_t_test", "delong_test", "holm", "mcnemar_exact",
           "paired_bootstrap", "paired_mean_test", "smallest_detectable", "verdict"]
