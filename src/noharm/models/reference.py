"""Reference (generic) models from scikit-learn beside the generic MLP: logistic
regression and histogram gradient boosting, with the same runs interface as the
networks (``fit_runs`` / ``predict_proba_runs``), so a study or the guard treats every
model alike.

Persistence without pickle: :meth:`SklearnRuns.save` writes ``config.json`` (the same
format marker as the networks') and ``models.skops`` (the fitted per-run estimators,
written by :mod:`skops.io`); :meth:`SklearnRuns.load` reads them back trusting only
scikit-learn and numpy types."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .. import __version__
from .._validation import align_features, check_binary_y, check_choice, check_X
from ..errors import ConfigError, PersistenceError
from .base import NotFittedError
from .base import FORMAT_VERSION, IMPUTE_CHOICES, changed_config

REFERENCE_KINDS = ("logreg", "hgb")

#: the file of a saved SklearnRuns that holds its fitted estimators (skops format)
MODELS_FILE = "models.skops"
#: module prefixes of the types a models.skops may hold beyond skops' own defaults
TRUSTED_PREFIXES = ("sklearn.", "numpy.")
#: builtins that skops reports as untrusted and that are safe to load: none today (skops
#: trusts the primitives and containers the estimators use by default; a builtin function
#: such as ``builtins.eval`` is never trusted)
TRUSTED_BUILTINS: frozenset[str] = frozenset()
#: config.json fields covered by ``models_sha256`` (a changed feature order or class
#: list would silently change what the predictions mean)
SKLEARN_ROUTING_FIELDS = ("class", "params", "classes", "feature_names", "n_runs")
_REGISTRY: dict[str, type["SklearnRuns"]] = {}


def _models_digest(models_file: Path, cfg: dict) -> str:
    """sha256 over the routing fields of ``cfg`` and the bytes of ``models_file``
    (streamed)."""
    h = hashlib.sha256(json.dumps({k: cfg.get(k) for k in SKLEARN_ROUTING_FIELDS},
                                  sort_keys=True, default=str).encode())
    with open(models_file, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def trusted_type(name: str) -> bool:
    """Whether a type skops reports as untrusted may be loaded: scikit-learn and numpy
    types, and the few safe builtins in :data:`TRUSTED_BUILTINS`."""
    return name.startswith(TRUSTED_PREFIXES) or name in TRUSTED_BUILTINS


class SklearnRuns(BaseEstimator):
    """scikit-learn models with the runs interface of the networks: one clone of
    :meth:`_template` per run, fitted on all its rows (the union of its training and
    early-stopping rows: the references do not early-stop on them, so nothing is held
    back; scikit-learn's gradient boosting keeps its own internal validation split per its
    defaults), missing values per ``impute``, feature names matched at prediction.  A
    column missing on every training row of a run is left out of that run's model.

    :meth:`save` / :meth:`load` persist a fitted model without pickle
    (``config.json`` + ``models.skops``)."""

    #: the kinds a subclass offers
    KINDS: tuple[str, ...] = ()

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        _REGISTRY[cls.__name__] = cls

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
        """Fit one model per run: run ``r`` on the rows ``train_indices[r]`` together with
        ``val_indices[r]`` (sorted, each row once; the networks' early-stopping rows are
        training rows here), seeded with ``seeds[r]``.  ``sensitive_features`` is
        ignored."""
        if not len(train_indices) == len(val_indices) == len(seeds):
            raise ConfigError(f"fit_runs got {len(train_indices)} train_indices, "
                              f"{len(val_indices)} val_indices and {len(seeds)} seeds; "
                              "give one of each per run.")
        Xa, names = self._X(X)
        t = self._targets(y, Xa.shape[0])
        Xa = Xa.astype(np.float64)
        rows = [np.union1d(np.asarray(tr, dtype=np.int64), np.asarray(va, dtype=np.int64))
                for tr, va in zip(train_indices, val_indices)]
        self.models_ = [clone(self._template(int(s))).fit(_no_empty_columns(Xa[r]), t[r])
                        for r, s in zip(rows, seeds)]
        self.feature_names_in_, self.n_features_in_ = names, Xa.shape[1]
        self.n_runs_ = len(self.models_)
        return self

    def _saved_params(self) -> dict:
        """The parameters config.json records (JSON values)."""
        return self.get_params(deep=False)

    @classmethod
    def _from_saved(cls, params: dict, models: Any) -> "SklearnRuns":
        """An unfitted estimator from the recorded parameters (and the loaded runs)."""
        return cls(**params)

    def _check_fitted(self) -> None:
        if not hasattr(self, "models_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit first.")

    def _features(self, X: Any) -> np.ndarray:
        self._check_fitted()
        Xa, _ = self._X(align_features(X, self.feature_names_in_, who=type(self).__name__))
        return Xa.astype(np.float64)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Save to a directory: ``config.json`` (parameters, classes, feature names,
        runs, versions and a checksum) + ``models.skops`` (the fitted estimators of the
        runs, written by :func:`skops.io.dump`; no pickle).  Returns the directory."""
        import skops.io as sio

        self._check_fitted()
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise PersistenceError(f"{path} is a file; save a model to a directory.")
        cfg: dict[str, Any] = {
            "format": "noharm-model", "format_version": FORMAT_VERSION,
            "noharm_version": __version__, "class": type(self).__name__,
            "params": self._saved_params(), "kind": self.kind,
            "feature_names": [str(n) for n in self.feature_names_in_],
            "n_runs": int(self.n_runs_), "models_file": MODELS_FILE,
            "sklearn_version": sklearn.__version__,
        }
        if hasattr(self, "classes_"):
            cfg["classes"] = [c.item() if hasattr(c, "item") else c for c in self.classes_]
        foreign = [t for t in sio.get_untrusted_types(data=sio.dumps(list(self.models_)))
                   if not trusted_type(t)]
        if foreign:
            raise PersistenceError(
                f"this {type(self).__name__} holds the type {foreign[0]!r}, which noharm "
                "would not load back (only scikit-learn and numpy types are trusted); use "
                "the model in this session, or save it with its own library.")
        from .persistence import saving_to
        with saving_to(path):
            sio.dump(list(self.models_), path / MODELS_FILE)
            cfg["models_sha256"] = _models_digest(path / MODELS_FILE, cfg)
            (path / "config.json").write_text(json.dumps(cfg, indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "SklearnRuns":
        """Load a model saved with :meth:`save`.  Checks the format version and the saved
        checksum, and loads only scikit-learn and numpy types from ``models.skops``
        (anything else is a PersistenceError naming the type)."""
        from .persistence import read_config

        path, cfg = read_config(path)
        klass = _REGISTRY.get(str(cfg.get("class", "")))
        if klass is None or not issubclass(klass, cls):
            raise PersistenceError(f"{path} holds a {cfg.get('class')!r}, not a {cls.__name__}"
                                   f"; load it with noharm.models.persistence.load_model.")
        models_file = path / MODELS_FILE
        if not models_file.is_file():
            raise PersistenceError(f"{path} holds no {MODELS_FILE} (the fitted "
                                   f"{cfg.get('class')} runs); re-save the model with "
                                   "model.save(dir).")
        if _models_digest(models_file, cfg) != cfg.get("models_sha256"):
            raise PersistenceError(
                f"{path} was changed after saving: {MODELS_FILE} or the parameters, classes "
                "or features in config.json differ from what was saved (checksum differs); "
                "re-save the model.")
        models = _read_models(models_file, cfg)
        with changed_config(path):
            est = klass._from_saved(dict(cfg["params"]), models)
            est.feature_names_in_ = [str(n) for n in cfg["feature_names"]]
            est.n_features_in_ = len(est.feature_names_in_)
            est.n_runs_ = int(cfg["n_runs"])
            if "classes" in cfg:
                est.classes_ = np.array(cfg["classes"])
            template = _structure(est._template(0))
        if not isinstance(models, list) or len(models) != est.n_runs_ or \
                not all(_structure(m) == template for m in models):
            found = sorted({_structure(m) for m in models}) if isinstance(models, list) \
                else [type(models).__name__]
            raise PersistenceError(
                f"{models_file} does not hold {est.n_runs_} run(s) of a "
                f"{klass.__name__}(kind={est.kind!r}, impute={est.impute!r}) (expected "
                f"{template}, found {found}); it was not written by this model's save: "
                "re-save the model.")
        est.models_ = models
        return est


class ReferenceClassifier(ClassifierMixin, SklearnRuns):
    """``kind="logreg"`` (standardised features, L2 logistic regression) or ``"hgb"``
    (HistGradientBoostingClassifier with scikit-learn's defaults).  ``fit_runs`` fits
    one model per run on all its rows, training and early-stopping rows together (no
    row is held back: logistic regression does not early-stop, and HGB keeps its own
    internal validation split per scikit-learn's defaults; HGB seeds each run with its
    seed); predictions average the runs.  ``save`` / ``load`` persist it without pickle.

    ``impute="median"`` (default) accepts missing values: logistic regression fills them
    with the training medians and adds a missing indicator per column with gaps
    (scikit-learn's SimpleImputer), gradient boosting handles them natively; ``"none"``
    makes NaN an error."""

    KINDS = REFERENCE_KINDS

    def __init__(self, kind: str = "logreg", random_state: int = 0, impute: str = "median"):
        super().__init__(kind=kind, random_state=random_state, impute=impute)

    def __sklearn_tags__(self):
        """Honest tags: binary targets only; missing values accepted when the model
        imputes them (gradient boosting natively); y required."""
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.input_tags.allow_nan = self.impute == "median" or self.kind == "hgb"
        tags.target_tags.required = True
        return tags

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
        p1 = self.predict_proba(X)[:, 1]           # checks fitting first
        return self.classes_[(p1 >= 0.5).astype(int)]


def _no_empty_columns(X: np.ndarray) -> np.ndarray:
    """A run's training rows with each column that is missing on every one of them set to
    0: constant, so the run's model leaves it out (gradient boosting cannot split on it,
    logistic regression gives it a zero coefficient) whatever a later row holds; without
    this, gradient boosting's binning fails on a column with no observed value."""
    empty = np.isnan(X).all(axis=0)
    if not empty.any():
        return X
    X = X.copy()
    X[:, empty] = 0.0
    return X


def _structure(est: Any) -> str:
    """The class of an estimator and, for a pipeline, of its steps: what a loaded run must
    share with the model's template."""
    steps = getattr(est, "steps", None)
    if isinstance(steps, list):
        return f"{type(est).__name__}({', '.join(type(s).__name__ for _, s in steps)})"
    return type(est).__name__


def _read_models(models_file: Path, cfg: dict) -> Any:
    """The estimators in ``models_file``, loaded with an explicit allow-list: the types
    skops does not trust by default must be scikit-learn or numpy types."""
    import skops.io as sio

    saved_with = cfg.get("sklearn_version")
    versions = (f" (saved with scikit-learn {saved_with}, this is {sklearn.__version__})"
                if saved_with and saved_with != sklearn.__version__ else "")
    try:
        untrusted = sio.get_untrusted_types(file=models_file)
    except Exception as exc:       # skops raises zip, JSON and its own error types
        raise PersistenceError(f"{models_file} is damaged and cannot be read "
                               f"({type(exc).__name__}: {exc}); re-save the model."
                               ) from None
    foreign = [t for t in untrusted if not trusted_type(t)]
    if foreign:
        raise PersistenceError(
            f"{models_file} holds the type {foreign[0]!r}, which noharm does not load (only "
            "scikit-learn and numpy types are trusted); it was not written by noharm's "
            "save: re-save the model with model.save(dir).")
    try:
        return sio.load(models_file, trusted=list(untrusted))
    except Exception as exc:       # as above, plus errors of scikit-learn's __setstate__
        raise PersistenceError(f"{models_file} is damaged and cannot be loaded{versions} "
                               f"({type(exc).__name__}: {exc}); re-save the model."
                               ) from None


__all__ = ["MODELS_FILE", "REFERENCE_KINDS", "ReferenceClassifier", "SklearnRuns",
           "trusted_type"]
