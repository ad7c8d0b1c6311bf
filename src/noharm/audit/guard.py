"""The harm guard (DESIGN §9): personalization for a group only where data no model
trained or early-stopped on shows that it helps.

The burden of proof is on personalization (seed 001's H0: BoP(s) <= 0).  For every
group ``s`` and personalized candidate ``c``, a one-sided paired test on the guard rows of
``s`` asks whether ``c`` beats the reference; the p-values are Holm-adjusted over all
groups x candidates (family-wise error at ``alpha``), and ``c`` is deployed for ``s`` only
if its adjusted p-value is below ``alpha``.  Everywhere else — including groups with no
guard rows — the reference is used.  With ``margin > 0`` the test is one of
non-inferiority instead (H0: ``c`` is worse than the reference by at least ``margin``).

Metrics: ``log-loss`` (paired t-test on per-row log-loss differences; the default),
``zero-one`` (exact McNemar on paired correctness; with a margin a paired t-test on
correctness differences) and ``auroc`` (DeLong's test of two correlated AUROCs).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .._validation import check_choice, check_fraction
from .bop import pointwise_loss
from ..errors import ConfigError
from ..inference import (delong_test, holm, mcnemar_exact, paired_mean_test,
                         smallest_detectable)

GUARD_METRICS = ("log-loss", "zero-one", "auroc", "squared-error")
_LOSS = {"log-loss": "log_loss", "zero-one": "zero_one",     # names in audit.bop
         "squared-error": "squared_error"}


def guard_tests(y: np.ndarray, groups: np.ndarray, p_ref: np.ndarray,
                candidates: dict[str, np.ndarray], *, metric: str = "log-loss",
                alpha: float = 0.05, margin: float = 0.0) -> pd.DataFrame:
    """One row per (group, candidate): ``n``, ``effect`` (reference loss minus candidate
    loss, or AUROC gain: positive = the candidate is better), a two-sided 95 % interval
    ``ci_low``/``ci_high``, the one-sided ``p_value``, its Holm-adjusted ``p_holm`` over
    every row, and ``detectable``: the smallest effect this n could detect at level
    alpha / (number of tests) with power 0.8.

    Rows whose prediction is NaN (never guarded) are left out."""
    check_choice(metric, name="guard_metric", choices=GUARD_METRICS)
    check_fraction(alpha, name="alpha", high=0.5)
    if margin < 0:
        raise ConfigError(f"margin must be >= 0, got {margin}.")
    y = np.asarray(y, dtype=float) if metric == "squared-error" else np.asarray(y).astype(int)
    groups = np.asarray(groups).astype(str)
    ok = ~np.isnan(p_ref)
    rows = []
    for name, p_c in candidates.items():
        use = ok & ~np.isnan(p_c)
        for g in sorted(np.unique(groups)):
            m = use & (groups == g)
            rows.append({"group": g, "candidate": name, "n": int(m.sum()),
                         **_test(y[m], p_ref[m], p_c[m], metric, margin)})
    tests = pd.DataFrame(rows)
    if tests.empty:
        return tests
    tests["p_holm"] = holm(tests["p_value"].to_numpy())
    level = alpha / max(1, len(tests))
    z = stats.norm.isf(level) + stats.norm.ppf(0.8)
    tests["detectable"] = [smallest_detectable(sd, n, level) if metric != "auroc" else
                           z * sd for sd, n in zip(tests.pop("sd"), tests["n"])]
    return tests


def _test(y: np.ndarray, p_ref: np.ndarray, p_c: np.ndarray, metric: str,
          margin: float) -> dict:
    nan = float("nan")
    if len(y) < 2:
        return {"effect": nan, "ci_low": nan, "ci_high": nan, "p_value": 1.0, "sd": nan}
    if metric == "auroc":
        diff, se, p = delong_test(y, p_ref, p_c, margin)
        return {"effect": diff, "ci_low": diff - 1.96 * se, "ci_high": diff + 1.96 * se,
                "p_value": p, "sd": se}
    loss = _LOSS[metric]
    d = pointwise_loss(y, p_ref, loss) - pointwise_loss(y, p_c, loss)
    mean, _, high, p = paired_mean_test(d, margin)
    low = 2 * mean - high if np.isfinite(high) else nan
    if metric == "zero-one" and margin == 0:      # exact: H1 the candidate errs less
        _, _, p = mcnemar_exact((p_ref >= 0.5) == y, (p_c >= 0.5) == y, alternative="less")
    return {"effect": mean, "ci_low": low, "ci_high": high, "p_value": p,
            "sd": float(np.std(d, ddof=1))}


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
                         **{k: best[k] for k in ("n", "effect", "ci_low", "ci_high",
                                                 "p_value", "p_holm", "detectable")}})
        else:
            top = (t.sort_values("p_value").iloc[0] if len(t) else None)
            rows.append({"group": g, "deployed": reference,
                         "n": int(top["n"]) if top is not None else 0,
                         **{k: (top[k] if top is not None else np.nan)
                            for k in ("effect", "ci_low", "ci_high", "p_value", "p_holm",
                                      "detectable")}})
    cert = pd.DataFrame(rows)
    cert.insert(2, "reference", reference)
    return cert


def out_of_fold(proba: np.ndarray, runs: list[dict], n_rows: int) -> np.ndarray:
    """Guard predictions ``(n,)``: each row's prediction by the runs that guarded it
    (averaged over seeds), NaN for rows never guarded.  Checks that within a seed every
    guarded row was guarded by exactly one run (cross-fitting)."""
    total = np.zeros(n_rows)
    count = np.zeros(n_rows)
    per_seed: dict[int, np.ndarray] = {}
    for r, run in enumerate(runs):
        g = np.asarray(run["guard"], dtype=np.int64)
        seen = per_seed.setdefault(int(run["seed"]), np.zeros(n_rows, dtype=np.int64))
        seen[g] += 1
        total[g] += proba[r, g]
        count[g] += 1
    for seed, seen in per_seed.items():
        if seen.max() > 1:
            raise ConfigError(f"seed {seed}: a row is guarded by more than one run; the guard "
                              "needs cross-fitted runs (each row guarded once per seed).")
    with np.errstate(invalid="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


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
    from ..errors import FeatureMismatchError
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


__all__ = ["GUARD_METRICS", "check_same_features", "deploy", "guard_tests", "out_of_fold",
           "predict_p1"]
