"""The two forms of a model family (issue 28; seed 001's h0 and hp): **group-blind** —
the group columns, and any proxies the user declares, removed from X — and
**group-aware** — the same X plus the group attributes as one-hot inputs.

Seed 001 defines the benefit of personalization as the cost of a model trained on X only
minus that of one trained on X and the attributes S; Suriyakumar, Ghassemi & Ustun (ICML
2023) audit exactly these two forms ("one-hot" and "intersectional one-hot"
personalization).  Both forms wrap any classifier: a noharm network, a
:class:`~noharm.models.ReferenceClassifier` or a scikit-learn estimator, and both have
the runs interface, so they can be a :class:`~noharm.models.GuardedClassifier`'s
references (blind) and candidates (aware).
"""
from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from .._validation import (check_binary_y, check_choice, check_groups, check_numeric_y,
                           join_columns)
from ..errors import ConfigError, GroupError, PersistenceError
from .base import NotFittedError

ENCODINGS = ("intersectional", "onehot")


def as_frame(X: Any) -> pd.DataFrame:
    """X as a DataFrame (an array's columns named ``x0``, ``x1``, ...)."""
    if isinstance(X, pd.DataFrame):
        return X
    return pd.DataFrame(np.asarray(X), columns=[f"x{i}" for i in range(np.shape(X)[1])])


def attribute_columns(X: pd.DataFrame, attributes: Sequence[str]) -> list[str]:
    """The columns of X that hold the group attributes: the attribute's own column, or
    its one-hot block ``<attribute>_<value>`` (0/1 columns with exactly one 1 per row,
    as :func:`noharm.datasets.load_tabular` encodes a text column), so that a blind form
    removes every trace of it.  Other columns that merely start with the name
    (``age_years``) are proxies: name them yourself."""
    out: list[str] = []
    for a in attributes:
        if a in X.columns:
            out.append(a)
            continue
        block = [c for c in X.columns if str(c).startswith(f"{a}_") and
                 np.isin(X[c].to_numpy(dtype=float, na_value=np.nan), (0.0, 1.0)).all()]
        if block and np.allclose(X[block].to_numpy(dtype=float).sum(1), 1):
            out += [str(c) for c in block]
    return out


def _takes_groups(method: Any) -> bool:
    return "sensitive_features" in inspect.signature(method).parameters


def _default_estimator() -> Any:
    from .reference import ReferenceClassifier
    return ReferenceClassifier("logreg")


class _GroupForm(ClassifierMixin, BaseEstimator):
    """Shared machinery: which columns leave X, and the wrapped estimator's runs."""

    def __init__(self, estimator: Any = None, *, group_columns: Sequence[str] = (),
                 proxies: Sequence[str] = (), encoding: str = "intersectional"):
        self.estimator = estimator
        self.group_columns = group_columns
        self.proxies = proxies
        self.encoding = encoding

    # -- features -------------------------------------------------------------------------
    def _removed(self, X: pd.DataFrame) -> list[str]:
        gone = [*self.group_columns, *self.proxies]
        missing = [c for c in gone if c not in X.columns]
        if missing:
            raise ConfigError(f"group column(s) or proxies {missing} are not columns of X "
                              f"(its columns: {list(X.columns)[:8]}...); name columns of X, "
                              "or leave group_columns empty when X holds no group column.")
        return gone

    def _frame(self, X: Any) -> pd.DataFrame:
        if not isinstance(X, pd.DataFrame) and (self.group_columns or self.proxies):
            raise ConfigError("group_columns and proxies name columns: pass X as a "
                              "DataFrame with column names.")
        return as_frame(X)

    def _attributes(self, sensitive_features: Any, n: int) -> pd.DataFrame:
        """The attributes as a frame of strings (one column per attribute)."""
        if sensitive_features is None:
            raise GroupError(f"{type(self).__name__} needs sensitive_features (the group "
                             "attributes of every row).")
        if isinstance(sensitive_features, pd.DataFrame):
            check_groups(sensitive_features, n_rows=n)
            return sensitive_features.astype(str).reset_index(drop=True)
        labels = check_groups(sensitive_features, n_rows=n)
        return pd.DataFrame({"group": labels})

    def _features(self, X: Any, sensitive_features: Any, fitting: bool = False) -> pd.DataFrame:
        X = self._frame(X)
        out = X.drop(columns=self._removed(X))
        if not isinstance(self, GroupAware):
            return self._nonempty(out)
        onehot = self._encode(self._attributes(sensitive_features, len(X)), fitting)
        if onehot.shape[1]:
            names = [f"attr={lvl}" for lvl in self.onehot_names_]
            clash = set(names) & set(out.columns)
            if clash:
                raise ConfigError(f"X already has column(s) {sorted(clash)}; rename them.")
            out = pd.concat([out.reset_index(drop=True),
                             pd.DataFrame(onehot, columns=names, dtype=np.float32)], axis=1)
        return self._nonempty(out)

    @staticmethod
    def _nonempty(out: pd.DataFrame) -> pd.DataFrame:
        if out.shape[1] == 0:
            raise ConfigError("no feature is left once the group columns and proxies are "
                              "removed; the blind model needs at least one other column.")
        return out

    # -- fitting --------------------------------------------------------------------------
    def _is_regressor(self) -> bool:
        from sklearn.base import is_regressor
        est = self.estimator if self.estimator is not None else getattr(self, "estimator_",
                                                                         None)
        return est is not None and is_regressor(est)

    def _target(self, y: Any, n: int) -> Any:
        """The target as the wrapped model takes it (0/1 and classes_, or numbers)."""
        if self._is_regressor():
            return check_numeric_y(y, n_rows=n)
        y01, self.classes_ = check_binary_y(y, n_rows=n)
        return y01

    def _inner(self) -> Any:
        """The wrapped model with the runs interface (a plain scikit-learn classifier in
        an :class:`~noharm.models.any_estimator.EstimatorClassifier`)."""
        from .any_estimator import as_runs_model
        return (as_runs_model(clone(self.estimator)) if self.estimator is not None
                else _default_estimator())

    def _call(self, method: Any, *args: Any, sensitive_features: Any = None, **kw: Any):
        """Call a method of the wrapped model, handing it the groups only in the aware
        form (a blind form never lets the wrapped model see them)."""
        if isinstance(self, GroupAware) and _takes_groups(method):
            kw["sensitive_features"] = sensitive_features
        return method(*args, **kw)

    def _start_fit(self, X: Any, y: Any, sensitive_features: Any
                   ) -> tuple[pd.DataFrame, Any, Any]:
        """(the form's features, the target, the unfitted wrapped model)."""
        check_choice(self.encoding, name="encoding", choices=ENCODINGS)
        est = self._inner()
        if not isinstance(self, GroupAware) and (
                getattr(est, "requires_groups_fit", False) or
                getattr(est, "requires_groups_predict", False)):
            raise ConfigError(f"GroupBlind cannot wrap {type(est).__name__}, which uses the "
                              "groups itself; wrap a group-blind model (GenericClassifier, "
                              "ReferenceClassifier, any scikit-learn classifier).")
        Xf = self._features(X, sensitive_features, fitting=True)
        self.feature_names_in_ = np.asarray(self._frame(X).columns, dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        return Xf, self._target(y, len(Xf)), est

    def fit(self, X: Any, y: Any, *, sensitive_features: Any = None) -> "_GroupForm":
        Xf, target, est = self._start_fit(X, y, sensitive_features)
        self._call(est.fit, Xf, target, sensitive_features=sensitive_features)
        self.estimator_ = est
        return self

    def fit_runs(self, X: Any, y: Any, *, sensitive_features: Any = None,
                 train_indices: Sequence[np.ndarray], val_indices: Sequence[np.ndarray],
                 seeds: Sequence[int]) -> "_GroupForm":
        """The runs interface: the wrapped model's ``fit_runs`` on the form's features."""
        Xf, target, est = self._start_fit(X, y, sensitive_features)
        self.estimator_ = self._call(est.fit_runs, Xf, target, train_indices=train_indices,
                                     val_indices=val_indices, seeds=seeds,
                                     sensitive_features=sensitive_features)
        return self

    # -- prediction -----------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "estimator_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit "
                                 "first.")

    def _runs(self, X: Any, sensitive_features: Any, regression: bool) -> np.ndarray:
        """Every run's output (P(y = 1), or a regressor's prediction), (n_runs, n)."""
        self._check_fitted()
        if self._is_regressor() != regression:
            use = "predict / predict_runs" if self._is_regressor() else \
                "predict_proba / predict_proba_runs"
            raise ConfigError(f"this {type(self).__name__} wraps a "
                              f"{'regressor' if self._is_regressor() else 'classifier'}: "
                              f"use {use}.")
        Xf = self._features(X, sensitive_features)
        inner = self.estimator_
        runs = "predict_runs" if regression else "predict_proba_runs"
        if hasattr(inner, runs):
            return np.asarray(self._call(getattr(inner, runs), Xf,
                                         sensitive_features=sensitive_features))
        if regression:
            return np.asarray(self._call(inner.predict, Xf,
                                         sensitive_features=sensitive_features))[None]
        return np.asarray(self._call(inner.predict_proba, Xf,
                                     sensitive_features=sensitive_features))[:, 1][None]

    def predict_runs(self, X: Any, sensitive_features: Any = None) -> np.ndarray:
        """A regressor's predictions of every run, shape (n_runs, n)."""
        return self._runs(X, sensitive_features, regression=True)

    def predict_proba_runs(self, X: Any, sensitive_features: Any = None) -> np.ndarray:
        """P(y = 1) of every run, shape (n_runs, n)."""
        return self._runs(X, sensitive_features, regression=False)

    def predict_proba(self, X: Any, sensitive_features: Any = None) -> np.ndarray:
        p1 = self.predict_proba_runs(X, sensitive_features).mean(0)
        return np.column_stack([1 - p1, p1])

    def predict(self, X: Any, sensitive_features: Any = None) -> np.ndarray:
        """The predicted class (threshold 0.5), or a regressor's mean prediction."""
        if self._is_regressor():
            return self.predict_runs(X, sensitive_features).mean(0)
        return self.classes_[(self.predict_proba(X, sensitive_features)[:, 1] >= 0.5)
                             .astype(int)]


    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Save to a directory: ``config.json`` (the form: removed columns, encoding and
        levels) and the wrapped model under ``inner/`` (saved by its own ``save``: a
        network as safetensors, a ReferenceClassifier with skops; no pickle)."""
        from .. import __version__
        from .base import FORMAT_VERSION
        self._check_fitted()
        if not hasattr(self.estimator_, "save"):
            raise PersistenceError(
                f"this {type(self).__name__} wraps {type(self.estimator_).__name__}, which "
                "noharm cannot save without pickle; wrap a noharm model (a network or "
                "ReferenceClassifier) to save it.")
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise PersistenceError(f"{path} is a file; save a model to a directory.")
        cfg = {"format": "noharm-model", "format_version": FORMAT_VERSION,
               "noharm_version": __version__, "class": type(self).__name__,
               "group_columns": [str(c) for c in self.group_columns],
               "proxies": [str(c) for c in self.proxies], "encoding": self.encoding,
               "classes": [c.item() if hasattr(c, "item") else c
                           for c in getattr(self, "classes_", [])],
               "feature_names": [str(n) for n in self.feature_names_in_],
               "levels": getattr(self, "levels_", None),
               "onehot_names": getattr(self, "onehot_names_", None)}
        from .persistence import saving_to
        with saving_to(path):
            self.estimator_.save(path / "inner")
            (path / "config.json").write_text(json.dumps(cfg, indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "_GroupForm":
        """Load a form saved with :meth:`save` (the class named in its config)."""
        from .persistence import load_model, read_config
        path, cfg = read_config(path)
        klass = FORMS.get(str(cfg.get("class")))
        if klass is None or (cls is not _GroupForm and klass is not cls):
            raise PersistenceError(f"{path} holds a {cfg.get('class')}, not a "
                                   f"{cls.__name__}; load it with noharm.models.load_model.")
        try:
            est = klass(None, group_columns=tuple(cfg["group_columns"]),
                        proxies=tuple(cfg["proxies"]), encoding=cfg["encoding"])
            est.estimator_ = load_model(path / "inner")
            est.estimator = clone(est.estimator_)       # clone(loaded) refits this kind
            if cfg["classes"]:
                est.classes_ = np.array(cfg["classes"])
            est.feature_names_in_ = np.asarray(cfg["feature_names"], dtype=object)
            est.n_features_in_ = len(est.feature_names_in_)
            if cfg.get("levels") is not None:
                est.levels_ = {k: list(v) for k, v in cfg["levels"].items()}
                est.onehot_names_ = list(cfg["onehot_names"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise PersistenceError(f"{path}/config.json lacks a field of a saved "
                                   f"{klass.__name__} ({exc}); re-save the model.") from None
        return est


class GroupBlind(_GroupForm):
    """A model that never sees the group: ``group_columns`` and ``proxies`` are removed
    from X before ``estimator`` (default: logistic regression) is fitted or applied.

    Parameters
    ----------
    estimator : any binary classifier (noharm network, ReferenceClassifier, scikit-learn).
    group_columns : columns of X that hold the group attributes (e.g. ``age``, ``sex``).
    proxies : further columns the user declares as stand-ins for the attributes.
    encoding : unused (kept so both forms share their parameters).
    """


class GroupAware(_GroupForm):
    """The same family told the group: X without ``group_columns`` and ``proxies``, plus
    the attributes as one-hot inputs — ``encoding="intersectional"`` (default: one input
    per subgroup, e.g. ``old_female``) or ``"onehot"`` (one input per level of each
    attribute: additive, as in most clinical models).  Levels are fixed at fit; a group
    never seen there is an error.
    """

    def _encode(self, A: pd.DataFrame, fitting: bool = False) -> np.ndarray:
        if self.encoding == "intersectional" or A.shape[1] == 1:
            A = pd.DataFrame({"group": join_columns(A)})
        if fitting:
            self.levels_ = {c: sorted(A[c].unique()) for c in A.columns}
            self.onehot_names_ = [lvl if len(self.levels_) == 1 else f"{c}={lvl}"
                                  for c, levels in self.levels_.items() for lvl in levels]
        if set(A.columns) != set(self.levels_):
            raise GroupError(f"sensitive_features has attribute(s) {list(A.columns)}; the "
                             f"model was fitted with {list(self.levels_)}.")
        cols = []
        for c, levels in self.levels_.items():
            unseen = sorted(set(A[c]) - set(levels))
            if unseen:
                raise GroupError(f"group value(s) {unseen[:5]} of {c!r} were not seen in "
                                 f"training ({levels}); the aware model has no input for "
                                 "them: use the blind model for such rows.")
            cols.append((A[c].to_numpy()[:, None] == np.asarray(levels)[None]).astype(float))
        return np.hstack(cols)


#: the saved forms, by the class name in their config.json
FORMS = {"GroupBlind": GroupBlind, "GroupAware": GroupAware}

__all__ = ["ENCODINGS", "FORMS", "GroupAware", "GroupBlind", "as_frame", "attribute_columns"]
