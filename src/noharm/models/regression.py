"""Regressors for continuous outcomes (length of stay, a lab value): the generic,
decoupled and conditional-bias networks with a squared-error head, and the references
(ridge regression, gradient boosting).

The networks train on the target standardised with the mean and sd of each run's own
training rows (each decoupled subgroup network: of its subgroup's training rows) and
predict in the target's units.  Everything else (architecture, batching of runs, early
stopping, imputation, the conditional-bias attribute predictor) is the classifiers'.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.utils.metaestimators import available_if
import torch
from sklearn.base import RegressorMixin
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .._validation import check_numeric_y
from ..errors import ConfigError
from .conditional_bias import ConditionalBiasClassifier
from .decoupled import DecoupledClassifier
from .generic import GenericClassifier
from .reference import SklearnRuns


def _add_target_buffers(net: torch.nn.Module, n_members: int) -> None:
    net.register_buffer("y_mean", torch.zeros(n_members, 1))
    net.register_buffer("y_scale", torch.ones(n_members, 1))


class _NetRegressor(RegressorMixin):
    """What turns a noharm network classifier into a regressor."""

    _regression = True

    def _check_y(self, y: Any, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
        return check_numeric_y(y, n_rows=n_rows).astype(np.float32), np.array([])

    def score(self, X: Any, y: Any, sample_weight: Any = None, *,
              sensitive_features: Any = None) -> float:
        """R², predicting with the groups when the model needs them (NetClassifier's
        score; RegressorMixin's would not take the groups)."""
        from .base import NetClassifier
        return NetClassifier.score(self, X, y, sample_weight,
                                   sensitive_features=sensitive_features)

    def _pointwise(self, net: torch.nn.Module):
        """Squared error on the standardised target (per member)."""
        return lambda out, y: (out - (y - net.y_mean) / net.y_scale) ** 2

    def _build(self, n_members: int, seeds: list[int]) -> torch.nn.Module:
        net = super()._build(n_members, seeds)
        for sub in (net if isinstance(net, torch.nn.ModuleList) else [net]):
            _add_target_buffers(sub, n_members)
        return net

    def _fit_target(self, net: torch.nn.Module, y: torch.Tensor, rows: Sequence) -> None:
        with torch.no_grad():
            for e, r in enumerate(rows):
                t = y[torch.as_tensor(np.asarray(r), dtype=torch.long)].double()
                sd = float(t.std(unbiased=False)) if len(t) > 1 else 0.0
                net.y_mean[e, 0] = float(t.mean())
                net.y_scale[e, 0] = sd if sd > 1e-12 else 1.0

    def predict_runs(self, X: Any, sensitive_features: Any = None) -> np.ndarray:
        """Predictions of every run in the target's units, shape (n_runs, n_samples)."""
        return self._raw_runs(X, sensitive_features).numpy().astype(np.float64)

    def predict(self, X: Any, sensitive_features: Any = None) -> np.ndarray:
        """The runs' mean prediction, in the target's units."""
        return self.predict_runs(X, sensitive_features).mean(0)

    # a regressor has no probabilities: the classifier's methods are hidden (hasattr is
    # False, as scikit-learn expects of a regressor)
    @available_if(lambda self: False)
    def predict_proba_runs(self, X: Any, sensitive_features: Any = None) -> np.ndarray:
        raise ConfigError(f"{type(self).__name__} is a regressor: use predict / predict_runs.")

    @available_if(lambda self: False)
    def predict_proba(self, X: Any, sensitive_features: Any = None) -> np.ndarray:
        raise ConfigError(f"{type(self).__name__} is a regressor: use predict / predict_runs.")


class GenericRegressor(_NetRegressor, GenericClassifier):
    """The generic MLP with a squared-error head (parameters of
    :class:`~noharm.models.GenericClassifier`); ``predict`` is in the target's units."""


class DecoupledRegressor(_NetRegressor, DecoupledClassifier):
    """One generic-architecture regressor per subgroup (needs ``sensitive_features`` at
    fit and prediction time); parameters of :class:`~noharm.models.DecoupledClassifier`."""


class ConditionalBiasRegressor(_NetRegressor, ConditionalBiasClassifier):
    """The conditional-bias network with a squared-error label head; the attribute
    predictor and bias vectors are unchanged (parameters of
    :class:`~noharm.models.ConditionalBiasClassifier`)."""


REFERENCE_REGRESSORS = ("linreg", "hgb")


class ReferenceRegressor(RegressorMixin, SklearnRuns):
    """``kind="linreg"`` (median imputation with missing indicators, standardised
    features, ridge regression with alpha 1) or ``"hgb"`` (HistGradientBoostingRegressor,
    scikit-learn's defaults, missing values native), with the runs interface of the
    networks (``fit_runs`` / ``predict_runs``; each run fits on its training and
    early-stopping rows together).  ``save`` / ``load`` persist it without pickle."""

    KINDS = REFERENCE_REGRESSORS

    def __init__(self, kind: str = "linreg", random_state: int = 0, impute: str = "median"):
        super().__init__(kind=kind, random_state=random_state, impute=impute)

    def __sklearn_tags__(self):
        """Missing values accepted when the model imputes them (gradient boosting
        natively); y required."""
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self.impute == "median" or self.kind == "hgb"
        tags.target_tags.required = True
        return tags

    def _template(self, seed: int) -> Any:
        if self.kind == "linreg":
            return make_pipeline(*self._imputer(), StandardScaler(), Ridge(alpha=1.0))
        return HistGradientBoostingRegressor(random_state=seed)

    def _targets(self, y: Any, n_rows: int) -> np.ndarray:
        return check_numeric_y(y, n_rows=n_rows)

    def predict_runs(self, X: Any, sensitive_features: Any = None) -> np.ndarray:
        Xa = self._features(X)
        return np.vstack([m.predict(Xa) for m in self.models_])

    def predict(self, X: Any, sensitive_features: Any = None) -> np.ndarray:
        return self.predict_runs(X).mean(0)


def predict_runs(model: Any, X: Any, groups: Any) -> np.ndarray:
    """Run predictions of any noharm model: P(y = 1) of a classifier, the prediction of
    a regressor; shape (n_runs, n)."""
    regressor = (model._is_regressor() if hasattr(model, "_is_regressor")  # the forms
                 else hasattr(model, "predict_runs"))
    if regressor:
        return model.predict_runs(X, sensitive_features=groups)
    return model.predict_proba_runs(X, sensitive_features=groups)


__all__ = ["ConditionalBiasRegressor", "DecoupledRegressor", "GenericRegressor",
           "REFERENCE_REGRESSORS", "ReferenceRegressor", "predict_runs"]
