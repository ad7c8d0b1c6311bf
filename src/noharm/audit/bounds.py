"""How many attributes can a dataset validate?  Lower bounds on the error of any test of
H0: gamma <= 0 against H1: gamma >= eps (DESIGN §4, arXiv 2502.02786).

With d = 2^k groups of sizes m_j, any test errs with probability

    P_e >= 1 - 1 / (2 sqrt(d)) * sqrt( (1/d) * sum_j ((1 + chi2)^m_j - 1) )

where (1 + chi2) per sample is 1 + 4 eps^2 (categorical BoP, classification),
exp(eps^2 / sigma^2) (Gaussian BoP with sd sigma) or exp(|eps| / b) (Laplace, scale b).
With equal groups the largest k whose bound stays below 1/2 is
k_max = W(n ln(1 + chi2)) / ln 2 (W = Lambert W).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import math
from collections.abc import Sequence

import numpy as np
from scipy.special import lambertw

from ..errors import ConfigError, GroupError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

FAMILIES = ("categorical", "gaussian", "laplace")


def _check_eps(eps: float) -> float:
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not eps > 0:
        raise ConfigError(f"eps must be a number > 0 (the smallest benefit worth detecting), "
                          f"got {eps!r}.")
    return float(eps)


def chi2_per_sample(eps: float, family: str = "categorical", *, sigma: float | None = None,
                    laplace_b: float | None = None) -> float:
    """ln(1 + chi2) per sample for the BoP distribution family (returned as a log)."""
    eps = _check_eps(eps)
    if family == "categorical":
        return math.log1p(4 * eps ** 2)
    if family == "gaussian":
        if sigma is None or not sigma > 0:
            raise ConfigError(f"the Gaussian bound needs sigma > 0 (--sigma), got {sigma!r}.")
        return eps ** 2 / sigma ** 2
    if family == "laplace":
        if laplace_b is None or not laplace_b > 0:
            raise ConfigError(f"the Laplace bound needs a scale b > 0 (--laplace-b), "
                              f"got {laplace_b!r}.")
        # exact: 1 + chi2(Laplace(eps, b) || Laplace(0, b)) = 2/3 e^{eps/b} + 1/3 e^{-2 eps/b}
        # (integrating p1^2 / p0 over x < 0, 0 < x < eps and x > eps); e^{eps/b}, used
        # before, is an upper bound that inflated k_max (9.59 instead of 7.79)
        r = abs(eps) / laplace_b
        return math.log(2 / 3) + r + math.log1p(0.5 * math.exp(-3 * r))
    raise ConfigError(f"family must be one of {list(FAMILIES)}, got {family!r}.")


def prob_error_lower_bound(group_sizes: Sequence[int], log1p_chi2: float) -> float:
    """The lower bound on P_e for groups of the given sizes (clipped at 0: vacuous)."""
    m = np.asarray(group_sizes, dtype=float)
    if m.size == 0 or (m < 1).any():
        empty = int(np.sum(m < 1))
        raise GroupError(f"{empty} of {m.size} groups are empty; every group needs at least "
                         "one row for the bound (use fewer attributes or more data).")
    d = m.size
    expo = m * log1p_chi2
    if expo.max() > 700:                     # (1 + chi2)^m overflows: the bound is vacuous
        return 0.0
    s = np.expm1(expo).sum() / d
    return float(max(0.0, 1.0 - math.sqrt(s) / (2.0 * math.sqrt(d))))


def equal_groups_bound(n: float, k: int, log1p_chi2: float) -> float:
    """The P_e bound for d = 2^k equal groups of n / d rows, in closed form (no arrays,
    logarithms throughout, so n = 1e308 and k = 1000 cost nothing):
    1 - sqrt(expm1(m * log(1 + chi2)) / d) / 2 with m = n / d."""
    if not n >= 1:
        raise ConfigError(f"n must be >= 1 (rows of the dataset), got {n!r}.")
    k = int(k)
    log_d = k * math.log(2)
    if log_d > math.log(n):
        raise GroupError(f"k={k} attributes make 2^{k} groups but there are only {n:g} rows, "
                         "so some groups would be empty; the bound needs k <= log2(n).")
    x = math.ldexp(n, -k) * log1p_chi2                 # m * log(1 + chi2)
    log_expm1 = x + math.log1p(-math.exp(-x)) if x > 0 else -math.inf
    log_ratio = 0.5 * (log_expm1 - log_d) - math.log(2)  # log(sqrt(s / d) / 2)
    return float(max(0.0, 1.0 - math.exp(log_ratio))) if log_ratio < 1 else 0.0


def equal_groups(n: float, k: int) -> np.ndarray:
    """Sizes of d = 2^k equal groups of n rows; error if a group would be empty."""
    if not n >= 1:
        raise ConfigError(f"n must be >= 1 (rows of the dataset), got {n!r}.")
    d = 2 ** int(k)
    if d > n:
        raise GroupError(f"k={k} attributes make {d} groups but there are only {n:g} rows, so "
                         "some groups would be empty; the bound needs k <= log2(n).")
    return np.full(d, n / d)


def k_max(n: float, log1p_chi2: float) -> float:
    """Largest k (real-valued) whose bound stays below 1/2 with equal groups."""
    if not n >= 1:
        raise ConfigError(f"n must be >= 1 (rows of the dataset), got {n!r}.")
    return float(lambertw(n * log1p_chi2).real / math.log(2))


def bounds_table(n: float, eps: float, *, sigma: float | None = None,
                 laplace_b: float | None = None, k_values: Sequence[int] | None = None
                 ) -> tuple["pd.DataFrame", dict[str, float]]:
    """P_e bound for k = 1..K equal-group attributes, per family, and k_max per family.

    Families without their parameter (sigma, laplace_b) are left out.
    """
    import pandas as pd
    rows, kmax = bounds_rows(n, eps, sigma=sigma, laplace_b=laplace_b, k_values=k_values)
    return pd.DataFrame(rows), kmax


def bounds_rows(n: float, eps: float, *, sigma: float | None = None,
                laplace_b: float | None = None, k_values: Sequence[int] | None = None
                ) -> tuple[list[dict], dict[str, float]]:
    """:func:`bounds_table` as plain rows (no pandas: the CLI answers in well under a
    second)."""
    eps = _check_eps(eps)
    if not n >= 1:
        raise ConfigError(f"n must be >= 1 (rows of the dataset), got {n!r}.")
    fams = {"categorical": chi2_per_sample(eps, "categorical")}
    if sigma is not None:
        fams["gaussian"] = chi2_per_sample(eps, "gaussian", sigma=sigma)
    if laplace_b is not None:
        fams["laplace"] = chi2_per_sample(eps, "laplace", laplace_b=laplace_b)
    kmax = {f: k_max(n, c) for f, c in fams.items()}
    if k_values is None:            # k = 1..12 and the rows around k_max (not 1000 rows)
        top = max(1, min(int(math.floor(math.log2(n))),
                         int(math.ceil(max(kmax.values()))) + 3))
        near = {k for v in kmax.values() for k in range(max(1, int(v) - 2), top + 1)}
        k_values = sorted(set(range(1, min(top, 12) + 1)) | near)
    rows = []
    for f, c in fams.items():
        for k in k_values:
            pe = equal_groups_bound(n, k, c)
            rows.append({"family": f, "k": int(k), "groups": 2 ** int(k),
                         "rows_per_group": math.ldexp(n, -int(k)), "pe_lower_bound": pe,
                         "informative": pe < 0.5})
    return rows, kmax


def fit_bop_family(values: np.ndarray) -> dict:
    """Which distribution family do the individual BoP values follow?

    Values that all lie in {-1, 0, 1} (0-1 loss differences) are categorical.  Otherwise
    Gaussian (MLE mean, sd) and Laplace (median, mean absolute deviation) are compared by
    log-likelihood (both have two parameters, so this equals comparing AIC).
    """
    v = np.asarray(values, dtype=float)
    if v.size < 2:
        raise GroupError("need at least 2 individual BoP values to fit a family.")
    if np.isin(v, (-1.0, 0.0, 1.0)).all():
        return {"family": "categorical", "loglik": {}, "sigma": None, "laplace_b": None}
    mu, sd = v.mean(), v.std()
    med = np.median(v)
    b = np.abs(v - med).mean()
    sd, b = max(sd, 1e-12), max(b, 1e-12)
    ll_g = float(np.sum(-0.5 * np.log(2 * np.pi * sd ** 2) - (v - mu) ** 2 / (2 * sd ** 2)))
    ll_l = float(np.sum(-np.log(2 * b) - np.abs(v - med) / b))
    fam = "gaussian" if ll_g >= ll_l else "laplace"
    return {"family": fam, "loglik": {"gaussian": ll_g, "laplace": ll_l},
            "sigma": float(sd), "laplace_b": float(b)}


def bound_for_data(group_sizes: Sequence[int], eps: float, fit: dict) -> float:
    """P_e bound for the real group sizes under the fitted family."""
    c = chi2_per_sample(eps, fit["family"], sigma=fit.get("sigma"),
                        laplace_b=fit.get("laplace_b"))
    return prob_error_lower_bound(group_sizes, c)
