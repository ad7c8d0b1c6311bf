"""Reference (generic) models from scikit-learn beside the generic MLP: logistic
regression and histogram gradient boosting, with the same runs interface as the
networks (``fit_runs`` / ``predict_proba_runs``), so a study or the guard treats every
model alike."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .._validation import align_features, check_binary_y, check_choice, check_X
from ..errors import NotFittedError
from .base import IMPUTE_CHOICES

REFERENCE_KINDS = ("logreg", "hgb")


class SklearnRuns(BaseEstimator):
    """scikit-learn models with the runs interface of the networks: one clone of
    :meth:`_template` per run fitted on its training rows (the early-stopping rows are not
    used), missing values per ``impute``, feature names matched at prediction."""

    #: the kinds a subclass offers
    KINDS: tuple[str, ...] = ()

    def __init__(self, kind: str = "", random_state: int = 0, impute: str = "median"):
        self.kind = kind
        self.random_state = random_state
        self.impute = impute

    def _template(self, seed: int) -> Any:
        raise NotImplementedError

    def _targets(self, y: Any, n_rows: int) -> np.ndarray:
        raise NotImplementedError

    def _imputer(self) -> list:
        """Median imputation with missing indicators before a linear model."""
        return [SimpleImputer(strategy="median", add_indicator=True,
                              keep_empty_features=True)] if self.impute == "median" else []

    def _X(self, X: Any) -> tuple[np.ndarray, list[str]]:
        check_choice(self.kind, name="kind", choices=self.KINDS)
        check_choice(self.impute, name="impute", choices=IMPUTE_CHOICES)
        return check_X(X, allow_nan=self.impute == "median")

    def fit(self, X: Any, y: Any, *, sensitive_features: Any = None) -> "SklearnRuns":
        Xa, _ = self._X(X)
        rows = np.arange(Xa.shape[0])
        return self.fit_runs(X, y, train_indices=[rows], val_indices=[rows[:0]],
                             seeds=[self.random_state])

    def fit_runs(self, X: Any, y: Any, *, sensitive_features: Any = None,
                 train_indices: Sequence[np.ndarray], val_indices: Sequence[np.ndarray],
                 seeds: Sequence[int]) -> "SklearnRuns":
        Xa, names = self._X(X)
        t = self._targets(y, Xa.shape[0])
        Xa = Xa.astype(np.float64)
        self.models_ = [clone(self._template(int(s))).fit(Xa[tr], t[tr])
                        for tr, s in zip(train_indices, seeds)]
        self.feature_names_in_, self.n_features_in_ = names, Xa.shape[1]
        self.n_runs_ = len(self.models_)
        return self

    def _features(self, X: Any) -> np.ndarray:
        if not hasattr(self, "models_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit first.")
        Xa, _ = self._X(align_features(X, self.feature_names_in_, who=type(self).__name__))
        return Xa.astype(np.float64)


class ReferenceClassifier(ClassifierMixin, SklearnRuns):
    """``kind="logreg"`` (standardised features, L2 logistic regression) or ``"hgb"``
    (HistGradientBoostingClassifier with scikit-learn's defaults).  ``fit_runs`` fits
    one model per run on its training rows (the early-stopping rows are not used; HGB
    seeds each run with its seed); predictions average the runs.

    ``impute="median"`` (default) accepts missing values: logistic regression fills them
    with the training medians and adds a missing indicator per column with gaps
    (scikit-learn's SimpleImputer), gradient boosting handles them natively; ``"none"``
    makes NaN an error."""

    KINDS = REFERENCE_KINDS

    def __init__(self, kind: str = "logreg", random_state: int = 0, impute: str = "median"):
        super().__init__(kind=kind, random_state=random_state, impute=impute)

    def _template(self, seed: int) -> Any:
        if self.kind == "logreg":
            return make_pipeline(*self._imputer(), StandardScaler(),
                                 LogisticRegression(max_iter=2000))
        return HistGradientBoostingClassifier(random_state=seed)

    def _targets(self, y: Any, n_rows: int) -> np.ndarray:
        y01, self.classes_ = check_binary_y(y, n_rows=n_rows)
        return y01

    def predict_proba_runs(self, X: Any, sensitive_features: Any = None) -> np.ndarray:
        Xa = self._features(X)
        return np.vstack([m.predict_proba(Xa)[:, 1] for m in self.models_])

    def predict_proba(self, X: Any, sensitive_features: Any = None) -> np.ndarray:
        p1 = self.predict_proba_runs(X).mean(0)
        return np.column_stack([1 - p1, p1])

    def predict(self, X: Any, sensitive_features: Any = None) -> np.ndarray:
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]


__all__ = ["REFERENCE_KINDS", "ReferenceClassifier", "SklearnRuns"]
