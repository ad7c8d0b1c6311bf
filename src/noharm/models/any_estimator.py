"""Any scikit-learn-compatible classifier as a noharm model (issue 30): a pipeline,
``ExtraTreesClassifier``, xgboost's or lightgbm's classifier... with the runs interface
of noharm's networks, so it can be a reference or a candidate of the personalization
study, of :class:`~noharm.models.GuardedClassifier` and of the fair-use audit."""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin, clone
from sklearn.pipeline import Pipeline, make_pipeline

from ..errors import ConfigError
from .reference import ReferenceClassifier


def _seeded(est: Any, seed: int) -> Any:
    """A clone of ``est`` with every ``random_state`` parameter (nested ones of a
    pipeline included) set to ``seed``."""
    est = clone(est)
    keys = [k for k in est.get_params(deep=True) if k == "random_state"
            or k.endswith("__random_state")]
    if keys:
        est.set_params(**{k: int(seed) for k in keys})
    return est


class EstimatorClassifier(ReferenceClassifier):
    """Wrap a binary scikit-learn-compatible classifier: one seeded clone per run, fitted
    on the run's training and early-stopping rows (it does not early-stop on them), its
    ``predict_proba`` averaged over the runs.

    Parameters
    ----------
    estimator : an unfitted classifier with ``fit`` and ``predict_proba``.
    random_state : seed of :meth:`fit` (``fit_runs`` seeds each run).
    impute : ``"median"`` (default): median imputation with missing indicators before the
        estimator (fitted on each run's rows); ``"none"``: the estimator receives NaN as
        it is (gradient boosting and xgboost handle it).

    ``save`` / ``load`` use skops like the references: only scikit-learn and numpy types
    are loaded back (an xgboost model trains and predicts but is not saved by noharm).
    """

    KINDS = ("estimator",)

    def __init__(self, estimator: Any = None, random_state: int = 0,
                 impute: str = "median"):
        self.estimator = estimator
        self.random_state = random_state
        self.impute = impute
        self.kind = "estimator"

    def _template(self, seed: int) -> Any:
        est = self.estimator
        if est is None or not hasattr(est, "fit") or not hasattr(est, "predict_proba"):
            raise ConfigError(f"EstimatorClassifier needs a classifier with fit and "
                              f"predict_proba, got {type(est).__name__}.")
        est = _seeded(est, seed)
        steps = self._imputer()
        return make_pipeline(*steps, est) if steps else est

    def _saved_params(self) -> dict:
        return {"random_state": self.random_state, "impute": self.impute,
                "estimator": f"{type(self.estimator).__module__}."
                             f"{type(self.estimator).__qualname__}"}

    @classmethod
    def _from_saved(cls, params: dict, models: Any) -> "EstimatorClassifier":
        first = models[0] if isinstance(models, list) and models else None
        if isinstance(first, Pipeline) and params.get("impute") == "median":
            first = first.steps[-1][1]
        return cls(estimator=None if first is None else clone(first),
                   random_state=params["random_state"], impute=params["impute"])

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "models_")


def as_runs_model(est: Any) -> Any:
    """``est`` itself when it has the runs interface, else wrapped."""
    return est if hasattr(est, "fit_runs") else EstimatorClassifier(est)


__all__ = ["EstimatorClassifier", "as_runs_model"]
