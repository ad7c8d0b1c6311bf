"""Group fairness metrics of hard predictions (DESIGN §5).

With A = 1 the privileged group:

* SPD = P(Ŷ=1 | A=0) - P(Ŷ=1 | A=1)
* EOD = TPR(A=0) - TPR(A=1)
* AOD = ½ (ΔFPR + ΔTPR), Δ = unprivileged - privileged
* equalized-odds difference = max(|ΔTPR|, |ΔFPR|)

Signed metrics are negative when the unprivileged group gets fewer positives.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from ..errors import ConfigError, GroupError


def check_protected(protected, n: int) -> np.ndarray:
    """A binary 0/1 protected attribute with both groups present."""
    a = np.asarray(protected)
    if a.shape != (n,):
        raise ConfigError(f"the protected attribute needs one value per row ({n}), "
                          f"got shape {a.shape}.")
    vals = set(pd.unique(a).tolist())
    if not vals <= {0, 1}:          # True/False compare equal to 1/0
        shown = sorted(map(str, vals))[:6]
        raise ConfigError(
            f"the protected attribute must be binary 0/1 (1 = privileged), got values "
            f"{shown}; binarize it first, e.g. (race == 'Caucasian').astype(int) or "
            "(age >= 60).astype(int).")
    a = a.astype(int)
    for v, name in ((0, "unprivileged (A=0)"), (1, "privileged (A=1)")):
        if not (a == v).any():
            raise GroupError(f"the {name} group is absent from these rows; the metric "
                             "compares both groups.")
    return a


def _check(y_true, y_pred, protected) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y_pred = np.asarray(y_pred).astype(int)
    y_true = np.asarray(y_true).astype(int)
    if y_true.shape != y_pred.shape:
        raise ConfigError("y_true and y_pred need the same length.")
    return y_true, y_pred, check_protected(protected, len(y_pred))


def _rate(mask: np.ndarray, y_pred: np.ndarray, what: str, group: str) -> float:
    if not mask.any():
        raise GroupError(f"no {what} in the {group} group, so its rate is undefined; "
                         "use statistical parity, or more data.")
    return float(y_pred[mask].mean())


def group_rates(y_true, y_pred, protected) -> pd.DataFrame:
    """Selection rate, TPR and FPR per protected group (rows A=0, A=1)."""
    y_true, y_pred, a = _check(y_true, y_pred, protected)
    rows = []
    for v in (0, 1):
        m = a == v
        pos, neg = m & (y_true == 1), m & (y_true == 0)
        rows.append({"A": v, "n": int(m.sum()), "selection_rate": float(y_pred[m].mean()),
                     "tpr": float(y_pred[pos].mean()) if pos.any() else np.nan,
                     "fpr": float(y_pred[neg].mean()) if neg.any() else np.nan})
    return pd.DataFrame(rows).set_index("A")


def rates_by_group(y_true, y_pred, groups) -> tuple[list[float], list[float]]:
    """TPR and FPR of every group (any number of groups) that has positive, resp.
    negative, labels: the inputs of worst-gap and sd-across-groups fairness measures."""
    y, p, g = np.asarray(y_true), np.asarray(y_pred), np.asarray(groups)
    values = np.unique(g)
    tpr = [float(p[(g == v) & (y == 1)].mean()) for v in values if ((g == v) & (y == 1)).any()]
    fpr = [float(p[(g == v) & (y == 0)].mean()) for v in values if ((g == v) & (y == 0)).any()]
    return tpr, fpr


def statistical_parity_difference(y_true, y_pred, protected) -> float:
    y_true, y_pred, a = _check(y_true, y_pred, protected)
    return float(y_pred[a == 0].mean() - y_pred[a == 1].mean())


def equal_opportunity_difference(y_true, y_pred, protected) -> float:
    y_true, y_pred, a = _check(y_true, y_pred, protected)
    return (_rate((a == 0) & (y_true == 1), y_pred, "positive labels", "unprivileged (A=0)")
            - _rate((a == 1) & (y_true == 1), y_pred, "positive labels", "privileged (A=1)"))


def _fpr_diff(y_true, y_pred, a) -> float:
    return (_rate((a == 0) & (y_true == 0), y_pred, "negative labels", "unprivileged (A=0)")
            - _rate((a == 1) & (y_true == 0), y_pred, "negative labels", "privileged (A=1)"))


def average_odds_difference(y_true, y_pred, protected) -> float:
    y_true, y_pred, a = _check(y_true, y_pred, protected)
    return 0.5 * (_fpr_diff(y_true, y_pred, a)
                  + equal_opportunity_difference(y_true, y_pred, a))


def equalized_odds_difference(y_true, y_pred, protected) -> float:
    y_true, y_pred, a = _check(y_true, y_pred, protected)
    return max(abs(equal_opportunity_difference(y_true, y_pred, a)),
               abs(_fpr_diff(y_true, y_pred, a)))


def balanced_accuracy(y_true, y_pred, protected=None) -> float:
    """Mean of TPR and TNR (``protected`` is ignored; accepted for a uniform signature)."""
    y_true = np.asarray(y_true).astype(int)
    y_pred = np.asarray(y_pred).astype(int)
    if len(np.unique(y_true)) < 2:
        raise GroupError("balanced accuracy needs both classes among the labels.")
    return float(0.5 * (y_pred[y_true == 1].mean() + 1 - y_pred[y_true == 0].mean()))


METRICS: dict[str, Callable] = {
    "spd": statistical_parity_difference, "eod": equal_opportunity_difference,
    "aod": average_odds_difference, "eqodds": equalized_odds_difference,
    "balanced_accuracy": balanced_accuracy,
}


def bootstrap_ci(metric: Callable, y_true, y_pred, protected, *, n_boot: int = 1000,
                 level: float = 0.95, random_state: int = 0) -> tuple[float, float, float]:
    """(estimate, low, high): percentile CI, rows resampled within each (A, Y) stratum so
    that every replicate keeps both groups and both labels."""
    y_true, y_pred, a = _check(y_true, y_pred, protected)
    est = metric(y_true, y_pred, a)
    rng = np.random.default_rng(random_state)
    strata = [np.flatnonzero((a == v) & (y_true == t)) for v in (0, 1) for t in (0, 1)]
    strata = [s for s in strata if len(s)]
    reps = np.empty(n_boot)
    for b in range(n_boot):
        idx = np.concatenate([rng.choice(s, len(s)) for s in strata])
        reps[b] = metric(y_true[idx], y_pred[idx], a[idx])
    lo, hi = np.quantile(reps, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(est), float(lo), float(hi)


def fairness_report(y_true, y_pred, protected, *, n_boot: int = 1000,
                    random_state: int = 0) -> pd.DataFrame:
    """Every metric with its bootstrap CI (EOD/AOD/EqOdds left out when a group has no
    positive or negative labels)."""
    rows = []
    for name, fn in METRICS.items():
        try:
            est, lo, hi = bootstrap_ci(fn, y_true, y_pred, protected, n_boot=n_boot,
                                       random_state=random_state)
        except GroupError as exc:
            if name in ("spd", "balanced_accuracy"):
                raise
            rows.append({"metric": name, "value": np.nan, "ci_low": np.nan,
                         "ci_high": np.nan, "note": str(exc)})
            continue
        rows.append({"metric": name, "value": est, "ci_low": lo, "ci_high": hi, "note": ""})
    return pd.DataFrame(rows)
