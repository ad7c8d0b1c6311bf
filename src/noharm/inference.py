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
* :func:`paired_mean_test` — one-sided paired t-test on per-row loss differences.
* :func:`studentized_bootstrap_test` — one-sided bootstrap-t test of a mean difference
  (the guard's test of log-loss and squared-error differences: valid for small, skewed
  differences).
* :func:`refit_aware_test` — the same question when the models are ensembles over
  seeds: the variance of fitting is added to that of the rows (the guard's test of a
  fitted ensemble).
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
    two-sided CI upper end, p).  Fewer than two rows, or no variation, give p = 1:
    differences that never vary carry no evidence about their spread, so they prove
    nothing (a 3-row subgroup where the candidate wins every row by the same amount).
    """
    d = _finite(diff)
    if len(d) < 2:
        return float("nan"), float("nan"), float("nan"), 1.0
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    if _no_spread(sd, mean):
        return mean, float("nan"), float("nan"), 1.0
    se = sd / np.sqrt(len(d))
    t = (mean + margin) / se
    q = stats.t.ppf(level, len(d) - 1)
    high = mean + stats.t.ppf(0.5 + level / 2, len(d) - 1) * se
    return mean, mean - q * se, float(high), float(stats.t.sf(t, len(d) - 1))


def studentized_bootstrap_test(diff: np.ndarray, margin: float = 0.0, level: float = 0.95,
                               n_boot: int = 4999, random_state: int = 0
                               ) -> tuple[float, float, float, float]:
    """One-sided studentized (bootstrap-t) test of H0: mean(diff) <= -margin.

    The null distribution of ``t = (mean + margin) / se`` is estimated by resampling the
    units with replacement and recentring each replicate at the observed mean
    (``t* = (mean* - mean) / se*``): unlike the t distribution it follows the skewness
    of the differences, which is second-order accurate (Hall 1992, *The Bootstrap and
    Edgeworth Expansion*, §3.5; Efron & Tibshirani 1993, ch. 12 and 16).  Log-loss
    differences between two models are skewed: a few rows where one model is confidently
    wrong dominate them, and the t-test's one-sided level drifts above alpha on small n.

    Returns (mean, ci_low, ci_high, p): the bootstrap-t two-sided ``level`` interval and
    ``p = (1 + #{t* >= t}) / (n_boot + 1)``.  Fewer than two units, or differences that
    never vary, give p = 1 and a NaN interval (no evidence).  Deterministic for a given
    ``random_state``.
    """
    d = _finite(diff)
    nan = float("nan")
    if len(d) < 2:
        return nan, nan, nan, 1.0
    n, mean, sd = len(d), float(d.mean()), float(d.std(ddof=1))
    if _no_spread(sd, mean):
        return mean, nan, nan, 1.0
    se = sd / np.sqrt(n)
    rng = np.random.default_rng(random_state)
    m_b, se_b = np.empty(n_boot), np.empty(n_boot)
    step = max(1, 4_000_000 // n)                  # bounded memory on large groups
    for start in range(0, n_boot, step):
        boot = d[rng.integers(0, n, (min(step, n_boot - start), n))]
        m_b[start:start + len(boot)] = boot.mean(1)
        se_b[start:start + len(boot)] = boot.std(1, ddof=1) / np.sqrt(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_b = np.where(se_b > 0, (m_b - mean) / se_b, np.sign(m_b - mean) * np.inf)
    t_b = np.nan_to_num(t_b, nan=0.0)
    t_obs = (mean + margin) / se
    p = (1 + np.count_nonzero(t_b >= t_obs)) / (n_boot + 1)
    lo_q, hi_q = np.quantile(t_b, [(1 - level) / 2, (1 + level) / 2])
    return mean, float(mean - hi_q * se), float(mean - lo_q * se), float(p)


def refit_aware_test(diff: np.ndarray, seed_effects: np.ndarray, margin: float = 0.0,
                     level: float = 0.95) -> tuple[float, float, float, float]:
    """One-sided test of H0: mean(diff) <= -margin that counts the randomness of fitting.

    ``diff`` : per-unit loss differences (reference minus candidate) of the deployed
    models, each an ensemble over S seeds; ``seed_effects`` : the S per-seed effects (the
    same difference for the seed-s sub-ensembles of both models, averaged over units).
    Two models fitted with other seeds would differ by another amount: a paired test
    over rows alone answers "are *these* fits different", and two fits of one algorithm
    are, detectably, once the guard is large.  The variance of the effect is therefore
    ``var(diff)/n + var(seed_effects)/S`` (rows and fitting, Bouthillier et al. 2021,
    *Accounting for variance in machine learning benchmarks*, MLSys), referred to a t
    distribution with Welch-Satterthwaite degrees of freedom.

    Returns (mean, ci_low, ci_high, p) with a two-sided ``level`` interval; p = 1 when
    nothing varies or there are fewer than two units or seeds.
    """
    d, e = _finite(diff), _finite(seed_effects)
    nan = float("nan")
    if len(d) < 2 or len(e) < 2:
        return (float(d.mean()) if len(d) else nan), nan, nan, 1.0
    n, k, mean = len(d), len(e), float(d.mean())
    a, b = d.var(ddof=1) / n, e.var(ddof=1) / k
    if _no_spread(float(np.sqrt(a + b)), mean):
        return mean, nan, nan, 1.0
    df = (a + b) ** 2 / (a ** 2 / (n - 1) + b ** 2 / (k - 1))
    se = float(np.sqrt(a + b))
    half = stats.t.ppf(0.5 + level / 2, df) * se
    return mean, mean - half, mean + half, float(stats.t.sf((mean + margin) / se, df))


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
    """The smallest mean difference a one-sided level-``alpha`` paired t-test on ``n``
    units with per-unit sd ``sd`` detects with probability ``power``: the ``delta`` with
    ``P(T' > t_{1-alpha, n-1}) = power`` for ``T'`` noncentral t with ``n - 1`` degrees
    of freedom and noncentrality ``delta sqrt(n) / sd`` (exact for normal differences;
    the normal approximation is 22-34 % too small at n = 8-10).  No margin is added:
    with a non-inferiority margin the effect needed is this value minus the margin."""
    if n < 2 or not np.isfinite(sd):
        return float("inf")
    if sd == 0:
        return 0.0
    df = n - 1
    crit = stats.t.isf(alpha, df)

    def short(nc: float) -> float:
        return float(stats.nct.sf(crit, df, nc)) - power

    high = 2 * (crit + stats.norm.ppf(power)) + 1
    while short(high) < 0:
        high *= 2
    from scipy.optimize import brentq
    nc = brentq(short, 0.0, high, xtol=1e-10)
    return float(nc * sd / np.sqrt(n))


def _no_spread(sd: float, mean: float) -> bool:
    """An sd that is zero up to rounding (constant differences): no evidence."""
    return not sd > 1e-12 * max(1.0, abs(mean))


def _finite(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    return v[~np.isnan(v)]


__all__ = ["corrected_t_interval", "corrected_t_test", "delong_test", "holm", "mcnemar_exact",
           "paired_bootstrap", "paired_mean_test", "smallest_detectable",
           "refit_aware_test", "studentized_bootstrap_test", "verdict"]
