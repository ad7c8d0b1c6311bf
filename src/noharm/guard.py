"""The harm guard (DESIGN §9): personalization for a group only where data that the
deployed models never saw proves that it helps.

The burden of proof is on personalization (seed 001's H0: BoP(s) <= 0).  The guard rows
are a held-out part of the training data: every model is fitted (and early-stopped) on
the other rows, and the guard rows are scored once by exactly the fitted models that
would be deployed.  For every group ``s`` and personalized candidate ``c``, a one-sided
paired test on the guard rows of ``s`` asks whether ``c`` beats the reference; with
several generic references ``c`` must beat **every one of them** (an intersection-union
test: its p-value is the largest of the per-reference p-values, valid at ``alpha``
whichever reference is later used as the fallback, so no reference is selected on the
tested rows; Berger 1982, *Technometrics* 24: 295-300).  The p-values are
Holm-adjusted over all groups x candidates (family-wise error at ``alpha``) and ``c`` is
deployed for ``s`` only if its adjusted p-value is below ``alpha``.  Everywhere else —
groups with no or too few guard units included — the reference is used.  With
``margin > 0`` the test is one of non-inferiority (H0: ``c`` is worse than the reference
by at least ``margin``).

The unit of the test is the patient when ``ids`` are given (the per-row differences of
one patient are averaged first), else the row.  Groups with fewer than ``min_units``
units are not tested (p = 1): below that the tests' level is not reliable.

Metrics: ``log-loss`` (the default), ``squared-error`` and ``zero-one``: the mean
per-unit loss difference of the deployed models.  When the models are ensembles over
seeds (what :class:`~noharm.models.GuardedClassifier` and the study fit) the test adds
the variance of fitting to that of the rows (:func:`noharm.inference.refit_aware_test`):
two fits of one algorithm differ, and a row-only test would certify that chance
difference once the guard is large.  For single fitted models: a studentized bootstrap
test (:func:`noharm.inference.studentized_bootstrap_test`, which follows the skewness of
log-loss differences), or for ``zero-one`` without ids the exact McNemar test.
``auroc``: DeLong's test of two correlated AUROCs of the deployed models (rows only: a
ConfigError with ids; fitting variance not counted).

What a certificate covers: the fitted models it names, on data drawn like the training
data.  It says nothing about another hospital, a shifted case mix or a later time.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ._validation import check_choice, check_fraction, check_positive_int
from .losses import pointwise_loss
from .errors import ConfigError
from .inference import (delong_test, holm, mcnemar_exact, refit_aware_test,
                         smallest_detectable, studentized_bootstrap_test)

GUARD_METRICS = ("log-loss", "zero-one", "auroc", "squared-error")
_LOSS = {"log-loss": "log_loss", "zero-one": "zero_one",     # names in audit.bop
         "squared-error": "squared_error"}
#: groups with fewer guard units (patients, else rows) keep the reference untested
MIN_GUARD_UNITS = 20
_COLUMNS = ("effect", "ci_low", "ci_high", "p_value", "p_holm", "detectable")


def guard_tests(y: np.ndarray, groups: np.ndarray, p_ref: np.ndarray | dict[str, np.ndarray],
                candidates: dict[str, np.ndarray], *, metric: str = "log-loss",
                alpha: float = 0.05, margin: float = 0.0, ids: Any = None,
                min_units: int = MIN_GUARD_UNITS, random_state: int = 0) -> pd.DataFrame:
    """One row per (group, candidate) of the guard rows.

    Parameters
    ----------
    y, groups : labels (or targets) and group per guard row.
    p_ref : P(y = 1) (or predictions) of the reference per guard row, or a dict name ->
        array of every generic reference: the candidate must beat each (intersection-union
        test; the row reports the binding comparison, the one with the largest p).
        An array of shape (seeds, rows) holds a fitted ensemble's per-seed
        sub-ensembles: the deployed model is their mean, and the test adds the variance
        of fitting (:func:`noharm.inference.refit_aware_test`); a 1-D array is one fitted
        model, tested on the rows alone (a claim about that fit only).
    candidates : name -> predictions of each personalized candidate (same shapes).
    metric, alpha, margin : the test (see the module docstring).
    ids : patient id per guard row (the unit of the test), or None (rows are units).
    min_units : groups with fewer units are not tested (p = 1).
    random_state : seed of the bootstrap (results are deterministic).

    Returns
    -------
    DataFrame with ``group``, ``candidate``, ``versus`` (the binding reference), ``n``
    (units), ``effect`` (reference loss minus candidate loss, or AUROC gain: positive =
    the candidate is better), a two-sided 95 % interval ``ci_low``/``ci_high``, the
    one-sided ``p_value``, its Holm-adjusted ``p_holm`` over every row, and
    ``detectable``: the smallest effect this n could detect with power 0.8 at Holm's
    first-step level ``alpha / (number of tests)`` (noncentral t; no margin added).
    Rows whose prediction is NaN are left out.
    """
    check_choice(metric, name="guard_metric", choices=GUARD_METRICS)
    check_fraction(alpha, name="alpha", high=0.5)
    check_positive_int(min_units, name="min_units", minimum=2)
    if margin < 0:
        raise ConfigError(f"margin must be >= 0, got {margin}.")
    if metric == "auroc" and ids is not None:
        raise ConfigError("guard_metric 'auroc' treats rows as independent, but the guard "
                          "rows have patient ids (several rows per patient); use log-loss "
                          "or zero-one.")
    y = np.asarray(y, dtype=float) if metric == "squared-error" else np.asarray(y).astype(int)
    groups = np.asarray(groups).astype(str)
    refs = dict(p_ref) if isinstance(p_ref, dict) else {"reference": p_ref}
    refs = {k: np.asarray(v, dtype=float) for k, v in refs.items()}
    if not refs:
        raise ConfigError("the guard needs at least one reference.")
    unit = None if ids is None else np.asarray(ids).astype(str)
    ok = np.logical_and.reduce([~np.isnan(v).any(0) if v.ndim == 2 else ~np.isnan(v)
                                for v in refs.values()])
    rows = []
    for name, p_c in candidates.items():
        p_c = np.asarray(p_c, dtype=float)
        use = ok & ~(np.isnan(p_c).any(0) if p_c.ndim == 2 else np.isnan(p_c))
        for g in sorted(np.unique(groups)):
            m = use & (groups == g)
            u = None if unit is None else unit[m]
            n = int(m.sum()) if u is None else len(np.unique(u))
            per_ref = {r: _test(y[m], p[..., m], p_c[..., m], metric, margin, u,
                                random_state) for r, p in refs.items()}
            versus = max(per_ref, key=lambda r: (per_ref[r]["p_value"],
                                                 -np.nan_to_num(per_ref[r]["effect"])))
            res = dict(per_ref[versus])
            if n < min_units:
                res["p_value"] = 1.0
            rows.append({"group": g, "candidate": name, "versus": versus, "n": n, **res})
    tests = pd.DataFrame(rows)
    if tests.empty:
        return tests
    tests["p_holm"] = holm(tests["p_value"].to_numpy())
    level = alpha / max(1, len(tests))
    z = stats.norm.isf(level) + stats.norm.ppf(0.8)
    tests["detectable"] = [
        float("inf") if n < min_units else
        (z * sd if metric == "auroc" else smallest_detectable(sd, n, level))
        for sd, n in zip(tests.pop("sd"), tests["n"])]
    return tests


def unit_means(d: np.ndarray, units: np.ndarray | None) -> np.ndarray:
    """Per-unit mean of per-row values (rows are units when ``units`` is None)."""
    if units is None:
        return d
    codes, inv = np.unique(units, return_inverse=True)
    return np.bincount(inv, weights=d, minlength=len(codes)) / np.bincount(inv)


def _test(y: np.ndarray, p_ref: np.ndarray, p_c: np.ndarray, metric: str, margin: float,
          units: np.ndarray | None, random_state: int) -> dict:
    """The test of one (group, candidate, reference); 2-D predictions are (seeds, rows)
    of sub-ensembles whose mean over seeds is the deployed model."""
    nan = float("nan")
    if len(y) < 2:
        return {"effect": nan, "ci_low": nan, "ci_high": nan, "p_value": 1.0, "sd": nan}
    ref, cand = p_ref.mean(0) if p_ref.ndim == 2 else p_ref, \
        p_c.mean(0) if p_c.ndim == 2 else p_c
    if metric == "auroc":
        diff, se, p = delong_test(y, ref, cand, margin)
        if se == 0:                      # no variation: no evidence
            p = 1.0
        return {"effect": diff, "ci_low": diff - 1.96 * se, "ci_high": diff + 1.96 * se,
                "p_value": p, "sd": se}
    loss = _LOSS[metric]
    d = unit_means(pointwise_loss(y, ref, loss) - pointwise_loss(y, cand, loss), units)
    sd = float(np.std(d, ddof=1)) if len(d) > 1 else nan
    if p_ref.ndim == 2 and p_c.ndim == 2 and min(len(p_ref), len(p_c)) >= 2:
        k = min(len(p_ref), len(p_c))
        seeds = np.array([unit_means(pointwise_loss(y, p_ref[s], loss)
                                      - pointwise_loss(y, p_c[s], loss), units).mean()
                          for s in range(k)])
        mean, low, high, p = refit_aware_test(d, seeds, margin)
        n = len(d)
        sd = float(np.sqrt(n * (np.var(d, ddof=1) / n + np.var(seeds, ddof=1) / k)))
        return {"effect": mean, "ci_low": low, "ci_high": high, "p_value": p, "sd": sd}
    mean, low, high, p = studentized_bootstrap_test(d, margin, random_state=random_state)
    if metric == "zero-one" and margin == 0 and units is None:   # exact: H1 it errs less
        _, _, p = mcnemar_exact((ref >= 0.5) == y, (cand >= 0.5) == y, alternative="less")
    return {"effect": mean, "ci_low": low, "ci_high": high, "p_value": p, "sd": sd}


def deploy(tests: pd.DataFrame, groups: list[str], reference: str,
           alpha: float = 0.05) -> pd.DataFrame:
    """The certificate: per group the deployed model (the candidate with the smallest
    Holm-adjusted p-value below ``alpha``, ties to the larger effect; else the
    reference) with its test; groups without a test keep the reference."""
    rows = []
    for g in groups:
        t = tests[tests["group"] == g] if len(tests) else tests
        won = t[t["p_holm"] < alpha].sort_values(["p_holm", "effect"],
                                                 ascending=[True, False]) if len(t) else t
        if len(won):
            best = won.iloc[0]
            rows.append({"group": g, "deployed": best["candidate"],
                         **{k: best[k] for k in ("n", *_COLUMNS)},
                         "versus": best["versus"]})
        else:
            top = (t.sort_values("p_value").iloc[0] if len(t) else None)
            rows.append({"group": g, "deployed": reference,
                         "n": int(top["n"]) if top is not None else 0,
                         **{k: (top[k] if top is not None else np.nan) for k in _COLUMNS},
                         "versus": top["versus"] if top is not None else reference})
    cert = pd.DataFrame(rows)
    cert.insert(2, "reference", reference)
    return cert


def predict_p1(model: Any, X: Any, groups: np.ndarray | None) -> np.ndarray:
    """P(y = 1) from a fitted classifier, passing the groups when it needs them."""
    import inspect
    params = inspect.signature(model.predict_proba).parameters
    if "sensitive_features" in params and groups is not None:
        p = model.predict_proba(X, sensitive_features=groups)
    else:
        p = model.predict_proba(X)
    return np.asarray(p)[:, 1]


def check_same_features(h0: Any, hp: Any) -> None:
    """Raise FeatureMismatchError when two fitted models saw different feature sets."""
    from .errors import FeatureMismatchError
    f0 = getattr(h0, "feature_names_in_", None)
    fp = getattr(hp, "feature_names_in_", None)
    n0, np_ = getattr(h0, "n_features_in_", None), getattr(hp, "n_features_in_", None)
    if (f0 is not None and fp is not None and list(f0) != list(fp)) or (
            n0 is not None and np_ is not None and n0 != np_):
        only0 = sorted(set(map(str, f0 or [])) - set(map(str, fp or [])))[:5]
        onlyp = sorted(set(map(str, fp or [])) - set(map(str, f0 or [])))[:5]
        raise FeatureMismatchError(
            f"h0 and hp were fitted on different feature sets ({n0} vs {np_} features; only in "
            f"h0: {only0}, only in hp: {onlyp}); refit them on the same columns in the same "
            "order.")


__all__ = ["GUARD_METRICS", "MIN_GUARD_UNITS", "check_same_features", "deploy", "guard_tests",
           "predict_p1", "unit_means"]
