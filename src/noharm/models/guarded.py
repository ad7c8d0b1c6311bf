"""The deployable guarded model (DESIGN §9): per group, a personalized candidate where
guard data proves it helps (Holm-corrected over groups x candidates), the reference
elsewhere, with a certificate per group."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from .. import __version__
from .._validation import (align_features, check_binary_y, check_groups, check_positive_int,
                           check_X)
from ..audit.bop import pointwise_loss
from ..audit.guard import deploy, guard_tests, out_of_fold, predict_p1
from ..errors import ConfigError, NotFittedError, PersistenceError
from ..splits import cross_fit_runs
from .base import NetClassifier
from .conditional_bias import ConditionalBiasClassifier
from .generic import GenericClassifier

GUARD_FORMAT = 1


class GuardedClassifier(ClassifierMixin, BaseEstimator):
    """Personalize a group only where data no model trained on shows that it helps.

    Parameters
    ----------
    reference : estimator or dict name -> estimator, default ``{"generic":
        GenericClassifier()}``.  With several, the one with the lowest log-loss on the
        guard predictions is the reference for every row.
    candidates : dict name -> estimator, default ``{"conditional-bias":
        ConditionalBiasClassifier()}``: the personalized models.
    prefit : bool, default False.  False: ``fit`` cross-fits every model over ``n_folds``
        folds of its data (run k guards fold k, early-stops on fold k + 1, trains on the
        others), so every row gets a guard prediction from models that neither trained
        nor early-stopped on it; the deployed model of each kind is the ensemble of its
        ``n_folds`` cross-fitted members (what was tested, member by member, is what is
        deployed).  True: the models are already fitted and ``fit`` receives held-out
        guard data (one reference only).
    metric : ``"log-loss"`` (default), ``"zero-one"`` or ``"auroc"`` — the loss of the
        guard's paired test (see :mod:`noharm.audit.guard`).
    alpha : family-wise error level over groups x candidates (Holm), default 0.05.
    margin : 0 (superiority, default) or > 0: non-inferiority by ``margin``.
    n_folds, random_state : cross-fitting.

    Attributes
    ----------
    certificate_ : DataFrame, one row per group: ``deployed`` model, ``reference``, ``n``
        guard rows, ``effect`` (reference loss minus candidate loss; positive = helps) with
        its 95 % CI, ``p_value``, Holm ``p_holm``, and ``detectable``: the smallest effect
        this n could detect.
    tests_ : every (group, candidate) test.
    routing_ : dict group -> deployed model name.
    reference_ : name of the reference; models_ : fitted models by name.
    """

    def __init__(self, reference: Any = None, candidates: dict | None = None, *,
                 prefit: bool = False, metric: str = "log-loss", alpha: float = 0.05,
                 margin: float = 0.0, n_folds: int = 5, random_state: int = 0):
        self.reference = reference
        self.candidates = candidates
        self.prefit = prefit
        self.metric = metric
        self.alpha = alpha
        self.margin = margin
        self.n_folds = n_folds
        self.random_state = random_state

    def _models(self) -> tuple[dict, dict]:
        refs = self.reference if self.reference is not None else {"generic": GenericClassifier()}
        if not isinstance(refs, dict):
            refs = {"reference": refs}
        cands = (self.candidates if self.candidates is not None
                 else {"conditional-bias": ConditionalBiasClassifier()})
        if not refs or not cands:
            raise ConfigError("GuardedClassifier needs at least one reference and one "
                              "candidate model.")
        if set(refs) & set(cands):
            raise ConfigError(f"reference and candidate names overlap: "
                              f"{sorted(set(refs) & set(cands))}.")
        return refs, cands

    def fit(self, X: Any, y: Any, *, sensitive_features: Any) -> "GuardedClassifier":
        """Cross-fit (or, with ``prefit``, score) every model, test per group, route."""
        refs, cands = self._models()
        Xa, names = check_X(X, allow_nan=True)      # each model checks missing values
        y01, classes = check_binary_y(y, n_rows=Xa.shape[0])
        groups = check_groups(sensitive_features, n_rows=Xa.shape[0])
        if self.prefit:
            if len(refs) != 1:
                raise ConfigError("with prefit=True give one reference: choosing among "
                                  "several on the guard data and testing on it would use "
                                  "those rows twice.")
            fitted = {**refs, **cands}
            for name, m in fitted.items():
                if not (hasattr(m, "classes_") or hasattr(m, "net_")):
                    raise NotFittedError(f"the {name} model is not fitted; with prefit=True "
                                         "pass fitted models and held-out guard data.")
            oof = {name: predict_p1(m, X, groups) for name, m in fitted.items()}
        else:
            check_positive_int(self.n_folds, name="n_folds", minimum=3)
            runs = cross_fit_runs(groups, y01, n_folds=self.n_folds,
                                  random_state=self.random_state)
            fitted, oof = {}, {}
            for name, est in {**refs, **cands}.items():
                m = clone(est).fit_runs(X, y01, sensitive_features=groups,
                                        train_indices=[r["train"] for r in runs],
                                        val_indices=[r["early_stop"] for r in runs],
                                        seeds=[self.random_state * 100 + r["model_seed"]
                                               for r in runs])
                fitted[name] = m
                oof[name] = out_of_fold(m.predict_proba_runs(X, sensitive_features=groups),
                                        runs, len(y01))
        losses = {name: float(np.nanmean(pointwise_loss(y01, oof[name], "log_loss")))
                  for name in refs}
        self.reference_ = min(losses, key=losses.get)
        self.reference_losses_ = losses
        self.tests_ = guard_tests(y01, groups, oof[self.reference_],
                                  {c: oof[c] for c in cands}, metric=self.metric,
                                  alpha=self.alpha, margin=self.margin)
        self.certificate_ = deploy(self.tests_, sorted(set(groups)), self.reference_,
                                   self.alpha)
        self.routing_ = dict(zip(self.certificate_["group"], self.certificate_["deployed"]))
        used = {self.reference_, *self.routing_.values()}
        self.models_ = {k: v for k, v in fitted.items() if k in used}
        self.classes_, self.feature_names_in_, self.n_features_in_ = classes, names, len(names)
        return self

    def predict_proba(self, X: Any, *, sensitive_features: Any) -> np.ndarray:
        """Each row from its group's deployed model (the reference for unseen groups)."""
        if not hasattr(self, "routing_"):
            raise NotFittedError("this GuardedClassifier is not fitted yet; call fit first.")
        X = align_features(X, self.feature_names_in_, who="GuardedClassifier")
        Xa, _ = check_X(X, allow_nan=True)
        groups = check_groups(sensitive_features, n_rows=Xa.shape[0])
        p = predict_p1(self.models_[self.reference_], X, groups)
        for name in set(self.routing_.values()) - {self.reference_}:
            use = np.array([self.routing_.get(g) == name for g in groups])
            if use.any():
                p = np.where(use, predict_p1(self.models_[name], X, groups), p)
        return np.column_stack([1 - p, p])

    def predict(self, X: Any, *, sensitive_features: Any) -> np.ndarray:
        p1 = self.predict_proba(X, sensitive_features=sensitive_features)[:, 1]
        return self.classes_[(p1 >= 0.5).astype(int)]

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """``guard.json`` (certificate, routing) + one saved network per deployed model."""
        if not hasattr(self, "routing_"):
            raise NotFittedError("this GuardedClassifier is not fitted yet; call fit first.")
        path = Path(path)
        for name, m in self.models_.items():
            if not isinstance(m, NetClassifier):
                raise PersistenceError(f"the deployed model {name!r} is a {type(m).__name__}, "
                                       "which noharm cannot save without pickle; deploy "
                                       "network references only (reference='generic').")
        path.mkdir(parents=True, exist_ok=True)
        for name, m in self.models_.items():
            m.save(path / "models" / name)
        write_guard(path, reference=self.reference_, routing=self.routing_,
                    certificate=self.certificate_,
                    model_dirs={n: f"models/{n}" for n in self.models_},
                    classes=list(self.classes_), feature_names=list(self.feature_names_in_),
                    metric=self.metric, alpha=self.alpha, margin=self.margin)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "GuardedClassifier":
        """Load a guarded model saved by :meth:`save` or by ``noharm personalize --output``
        (``DIR/models/guarded/split<o>``)."""
        path = Path(path)
        try:
            meta = json.loads((path / "guard.json").read_text())
            if meta.get("format") != "noharm-guarded" or \
                    meta.get("format_version") != GUARD_FORMAT:
                raise ValueError("not a noharm guarded model")
            est = cls(metric=meta["metric"], alpha=meta["alpha"], margin=meta["margin"])
            est.reference_, est.routing_ = meta["reference"], dict(meta["routing"])
            est.classes_ = np.array(meta["classes"])
            est.feature_names_in_ = list(meta["feature_names"])
            est.n_features_in_ = len(est.feature_names_in_)
            est.certificate_ = pd.DataFrame(meta["certificate"])
            dirs = dict(meta["models"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise PersistenceError(f"{path} is not a saved GuardedClassifier ({exc}); save "
                                   "one with model.save(dir).") from None
        est.models_ = {n: NetClassifier.load(path / d) for n, d in dirs.items()}
        return est


def write_guard(path: Path, *, reference: str, routing: dict, certificate: pd.DataFrame,
                model_dirs: dict[str, str], classes: list, feature_names: list[str],
                metric: str, alpha: float, margin: float) -> Path:
    """Write ``path/guard.json``: what :meth:`GuardedClassifier.load` reads (model
    directories relative to ``path``)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    meta = {"format": "noharm-guarded", "format_version": GUARD_FORMAT,
            "noharm_version": __version__, "reference": reference,
            "routing": {str(k): str(v) for k, v in routing.items()}, "metric": metric,
            "alpha": alpha, "margin": margin, "models": model_dirs,
            "classes": [c.item() if hasattr(c, "item") else c for c in classes],
            "feature_names": list(feature_names),
            "certificate": json.loads(certificate.to_json(orient="records"))}
    (path / "guard.json").write_text(json.dumps(meta, indent=2))
    return path


__all__ = ["GuardedClassifier", "write_guard"]
