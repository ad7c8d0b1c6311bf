"""The harm guard: personalize a group only where held-out data does not show harm."""
from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from .._validation import check_X, check_binary_y, check_fraction, check_groups
from ..errors import FeatureMismatchError, NotFittedError
from .stats import mcnemar_exact


def predict_p1(model: Any, X: Any, groups: np.ndarray | None) -> np.ndarray:
    """P(y = 1) from a fitted classifier, passing the groups when it accepts them."""
    params = inspect.signature(model.predict_proba).parameters
    if "sensitive_features" in params and groups is not None:
        p = model.predict_proba(X, sensitive_features=groups)
    else:
        p = model.predict_proba(X)
    return np.asarray(p)[:, 1]


def check_same_features(h0: Any, hp: Any) -> None:
    """Raise FeatureMismatchError when two fitted models saw different feature sets."""
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


def choose_per_group(y: np.ndarray, p0: np.ndarray, pp: np.ndarray, groups: np.ndarray,
                     alpha: float) -> pd.DataFrame:
    """One-sided exact McNemar per group, H1: hp makes more errors than h0."""
    rows = []
    for g in np.unique(groups):
        m = groups == g
        c0 = (p0[m] >= 0.5) == y[m]
        cp = (pp[m] >= 0.5) == y[m]
        b, c, p = mcnemar_exact(c0, cp, alternative="greater")
        rows.append({"group": str(g), "n": int(m.sum()), "h0_right_hp_wrong": b,
                     "h0_wrong_hp_right": c, "p_value_harm": p,
                     "bop_zero_one": (c - b) / m.sum(),
                     "model": "generic" if p < alpha else "personalized"})
    return pd.DataFrame(rows)


class HarmGuard(ClassifierMixin, BaseEstimator):
    """Use the personalized model for a group only where held-out data does not show it
    to be worse than the generic model.

    ``fit`` takes *held-out validation data* and two already-fitted classifiers.  For every
    group it runs a one-sided exact McNemar test of H1 "hp makes more errors than h0" at
    level ``alpha``; groups where H1 is accepted fall back to the generic model.  Groups
    absent from the validation data also use the generic model (no evidence, no
    personalization).  Prediction needs the group of every row.

    Attributes
    ----------
    assignment_ : dict group -> "personalized" | "generic".
    report_ : DataFrame with the per-group counts, p-values and choices.
    """

    def __init__(self, generic: Any, personalized: Any, alpha: float = 0.05):
        self.generic = generic
        self.personalized = personalized
        self.alpha = alpha

    def fit(self, X: Any, y: Any, *, sensitive_features: Any) -> "HarmGuard":
        check_fraction(self.alpha, name="alpha", high=1.0)
        for name, m in (("generic", self.generic), ("personalized", self.personalized)):
            if not hasattr(m, "classes_") and not hasattr(m, "net_"):
                raise NotFittedError(f"the {name} model is not fitted; HarmGuard takes two "
                                     "fitted models and held-out validation data.")
        check_same_features(self.generic, self.personalized)
        Xa, _ = check_X(X)
        y01, classes = check_binary_y(y, n_rows=Xa.shape[0])
        groups = check_groups(sensitive_features, n_rows=Xa.shape[0])
        p0 = predict_p1(self.generic, X, groups)
        pp = predict_p1(self.personalized, X, groups)
        self.report_ = choose_per_group(y01, p0, pp, groups, self.alpha)
        self.assignment_ = dict(zip(self.report_["group"], self.report_["model"]))
        self.classes_ = classes
        return self

    def predict_proba(self, X: Any, sensitive_features: Any) -> np.ndarray:
        if not hasattr(self, "assignment_"):
            raise NotFittedError("this HarmGuard is not fitted yet; call fit on validation data.")
        Xa, _ = check_X(X)
        groups = check_groups(sensitive_features, n_rows=Xa.shape[0])
        use_p = np.array([self.assignment_.get(g) == "personalized" for g in groups])
        p = predict_p1(self.generic, X, groups)
        if use_p.any():
            p = np.where(use_p, predict_p1(self.personalized, X, groups), p)
        return np.column_stack([1 - p, p])

    def predict(self, X: Any, sensitive_features: Any) -> np.ndarray:
        return self.classes_[(self.predict_proba(X, sensitive_features)[:, 1] >= 0.5)
                             .astype(int)]
