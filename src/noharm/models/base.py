"""Shared machinery of the neural estimators: input handling, run-level fitting,
prediction, and persistence (safetensors + JSON, no pickle)."""
from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sklearn.exceptions import NotFittedError as _SklearnNotFittedError
import torch
from safetensors.torch import load_file, save_file
from sklearn.base import BaseEstimator, ClassifierMixin

from .. import __version__
from .._validation import (align_features, check_X, check_binary_y, check_choice, check_fraction, check_groups,
                           check_positive_int)
from .. import errors
from ..errors import GroupError, PersistenceError
from ..training import TrainConfig, TrainReport, set_threads

FORMAT_VERSION = 1
_REGISTRY: dict[str, type["NetClassifier"]] = {}


def train_val_split(y: np.ndarray, groups: np.ndarray | None, fraction: float,
                    seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hold out ``fraction`` of every (group, label) stratum for early stopping.

    Each stratum with at least two rows gives at least one validation row, so
    every subgroup present in training is also present in validation.
    """
    rng = np.random.default_rng([int(seed), 3])
    keys = y.astype(str) if groups is None else np.char.add(groups.astype(str),
                                                            "|" + y.astype(str))
    train, val = [], []
    for k in np.unique(keys):
        rows = rng.permutation(np.flatnonzero(keys == k))
        n_val = int(round(fraction * len(rows)))
        if len(rows) >= 2:
            n_val = min(max(n_val, 1), len(rows) - 1)
        else:
            n_val = 0
        val.append(rows[:n_val])
        train.append(rows[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


#: config.json fields that decide how rows reach the weights (a reordered ``groups`` list
#: would silently route rows to another group's network): covered by the checksum
ROUTING_FIELDS = ("class", "classes", "groups", "feature_names", "missing_indicators",
                  "n_runs", "n_members", "clusters", "target_scale")


def _tensor_digest(tensors: dict[str, torch.Tensor], cfg: dict | None = None) -> str:
    """sha256 over the tensors' names and bytes (in name order) and, with ``cfg``, the
    routing fields of the config."""
    import hashlib
    h = hashlib.sha256()
    if cfg is not None:
        h.update(json.dumps({k: cfg.get(k) for k in ROUTING_FIELDS}, sort_keys=True,
                            default=str).encode())
    for k in sorted(tensors):
        h.update(k.encode())
        h.update(tensors[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class NotFittedError(errors.NotFittedError, _SklearnNotFittedError):
    """A model used before ``fit``: noharm's NotFittedError and scikit-learn's."""


IMPUTE_CHOICES = ("median", "none")


def missing_columns(Xa: np.ndarray, rows: Sequence[np.ndarray], impute: str,
                    names: Sequence[str] = ()) -> list[int]:
    """Columns with a missing value (NaN) in the training rows (the union over runs) that
    get a missing indicator input when ``impute="median"``: one per distinct pattern of
    missing rows (columns always missing together share it).  A column missing on every
    training row gets none: it carries nothing, and each member leaves it out
    (:class:`noharm.nn.layers.Standardize`)."""
    if impute != "median" or not np.isnan(Xa).any():
        return []
    used = np.unique(np.concatenate([np.asarray(r, dtype=np.int64) for r in rows]))
    nan = np.isnan(Xa[used])
    out, seen = [], set()
    for i in np.flatnonzero(nan.any(axis=0) & ~nan.all(axis=0)):   # missing together: one
        key = np.packbits(nan[:, i]).tobytes()     # indicator (e.g. a lab's mean, min, max)
        if key not in seen:
            seen.add(key)
            out.append(int(i))
    return out


def check_mlp_params(est: Any) -> None:
    """The parameters every noharm network estimator shares: depth, width, dropout,
    validation share, seed and imputation."""
    check_positive_int(est.hidden_layers, name="hidden_layers")
    check_positive_int(est.hidden_units, name="hidden_units")
    check_fraction(est.dropout, name="dropout", inclusive_low=True)
    check_fraction(est.validation_fraction, name="validation_fraction", high=0.9)
    check_positive_int(est.random_state, name="random_state", minimum=0)
    check_choice(getattr(est, "impute", "none"), name="impute", choices=IMPUTE_CHOICES)


def weighted_mean(loss: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
    """Per-member mean of ``loss (E,B)`` over real rows (``w`` = 1; None = all rows)."""
    if w is None:
        return loss.mean(1)
    return (loss * w).sum(1) / w.sum(1).clamp(min=1.0)


class NetClassifier(ClassifierMixin, BaseEstimator):
    """Base class of noharm's torch classifiers (binary targets).

    Subclasses build an ensemble network and train it through
    :func:`noharm.training.fit_members`.  A plain :meth:`fit` trains one run
    (early stopping on ``validation_fraction`` of the rows); :meth:`fit_runs`
    trains several runs with given train / validation rows at once, which is
    how the CV x seeds protocol batches its 25 members.
    """

    requires_groups_fit: ClassVar[bool] = False
    requires_groups_predict: ClassVar[bool] = False
    _regression: ClassVar[bool] = False
    # metadata routing (scikit-learn >= 1.4, with enable_metadata_routing=True): the groups
    # flow to fit, predict and score by default, so cross_val_score, Pipeline and
    # GridSearchCV work with params={"sensitive_features": g}
    __metadata_request__fit = {"sensitive_features": True}
    __metadata_request__predict = {"sensitive_features": True}
    __metadata_request__predict_proba = {"sensitive_features": True}
    __metadata_request__score = {"sensitive_features": True}

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        _REGISTRY[cls.__name__] = cls

    def __sklearn_tags__(self):
        """scikit-learn's tags, honest: binary targets only, missing values accepted when
        the model imputes them, y required."""
        tags = super().__sklearn_tags__()
        if self._regression:              # the regressors inherit the classifiers' code
            tags.classifier_tags = None
        elif tags.classifier_tags is not None:
            tags.classifier_tags.multi_class = False
        tags.input_tags.allow_nan = getattr(self, "impute", "none") == "median"
        tags.target_tags.required = True
        return tags

    # ------------------------------------------------------------------ config
    def _train_config(self) -> TrainConfig:
        return TrainConfig(lr=self.lr, batch_size=self.batch_size, max_epochs=self.max_epochs,
                           patience=self.patience, weight_decay=self.weight_decay,
                           n_threads=self.n_threads).validate()

    def _check_params(self) -> None:
        check_mlp_params(self)

    # ------------------------------------------------------------------ task
    def _check_y(self, y: Any, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
        """(targets as the network trains on them, classes)."""
        return check_binary_y(y, n_rows=n_rows)

    def _pointwise(self, net: torch.nn.Module):
        """Per-row training loss ``f(output (E,B), y (E,B))``: BCE on the logit."""
        import torch.nn.functional as F
        return lambda out, y: F.binary_cross_entropy_with_logits(out, y, reduction="none")

    def _fit_target(self, net: torch.nn.Module, y: torch.Tensor, rows: Sequence) -> None:
        """Target statistics from each member's training rows (regressors only)."""

    def _input_kw(self) -> dict:
        """How the network prepares its inputs: imputation and missing indicators."""
        return {"impute": getattr(self, "impute", "none") == "median",
                "indicators": list(getattr(self, "missing_indicators_", []))}

    # ------------------------------------------------------------------ inputs
    def _inputs(self, X: Any, sensitive_features: Any, *, fitting: bool
                ) -> tuple[np.ndarray, np.ndarray | None]:
        if not fitting:
            X = align_features(X, self.feature_names_in_, who=type(self).__name__)
        Xa, names = check_X(X, allow_nan=getattr(self, "impute", "none") == "median")
        if fitting:
            self.feature_names_in_ = names
            self.n_features_in_ = Xa.shape[1]
        needs = self.requires_groups_fit if fitting else self.requires_groups_predict
        if sensitive_features is None:
            if needs:
                when = "fit" if fitting else "prediction"
                raise GroupError(
                    f"{type(self).__name__} needs sensitive_features at {when} time "
                    + ("(it routes each row to its group's model); pass the same group columns "
                       "as in fit." if not fitting else "(the subgroup label of every row)."))
            return Xa, None
        groups = check_groups(sensitive_features, n_rows=Xa.shape[0])
        return Xa, groups

    def _group_codes(self, groups: np.ndarray) -> np.ndarray:
        known = {g: i for i, g in enumerate(self.groups_)}
        unseen = sorted(set(map(str, np.unique(groups))) - set(known))
        if unseen:
            raise GroupError(
                f"group {unseen[0]!r} was never seen in training (known groups: "
                f"{', '.join(self.groups_)}); use a model that needs no group at prediction "
                "time (GenericClassifier, ConditionalBiasClassifier) or retrain with that group.")
        return np.array([known[g] for g in groups], dtype=np.int64)

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Any, *, sensitive_features: Any = None) -> "NetClassifier":
        """Fit one model; ``validation_fraction`` of the rows is held out for early stopping.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features), numeric.
        y : binary labels (any two values).
        sensitive_features : subgroup label per row (Series/array, or a DataFrame whose
            columns are combined into intersectional labels).
        """
        self._check_params()
        Xa, groups = self._inputs(X, sensitive_features, fitting=True)
        y01, classes = self._check_y(y, Xa.shape[0])
        strat_y = np.zeros(len(y01), dtype=int) if self._regression else y01
        tr, va = train_val_split(strat_y, groups, self.validation_fraction, self.random_state)
        return self._fit(Xa, y01, classes, groups, [tr], [va], [self.random_state])

    def fit_runs(self, X: Any, y: Any, *, sensitive_features: Any = None,
                 train_indices: Sequence[np.ndarray], val_indices: Sequence[np.ndarray],
                 seeds: Sequence[int]) -> "NetClassifier":
        """Train several runs at once (one ensemble member each, batched).

        Run ``r`` trains on rows ``train_indices[r]``, early-stops on
        ``val_indices[r]`` and is seeded with ``seeds[r]``.  Predict with
        :meth:`predict_proba_runs`.
        """
        self._check_params()
        Xa, groups = self._inputs(X, sensitive_features, fitting=True)
        y01, classes = self._check_y(y, Xa.shape[0])
        return self._fit(Xa, y01, classes, groups, [np.asarray(t) for t in train_indices],
                         [np.asarray(v) for v in val_indices], [int(s) for s in seeds])

    def _fit(self, Xa: np.ndarray, y01: np.ndarray, classes: np.ndarray,
             groups: np.ndarray | None, train_idx: list[np.ndarray],
             val_idx: list[np.ndarray], seeds: list[int]) -> "NetClassifier":
        self.classes_ = classes
        if groups is not None:
            self.groups_ = [str(g) for g in np.unique(groups)]
            codes = self._group_codes(groups)
        else:
            self.groups_ = []
            codes = np.zeros(len(y01), dtype=np.int64)
        self.n_runs_ = len(seeds)
        self.missing_indicators_ = missing_columns(Xa, train_idx, self.impute,
                                                  self.feature_names_in_)
        self.train_report_ = self._train(torch.from_numpy(Xa), torch.from_numpy(y01), codes,
                                         groups, train_idx, val_idx, seeds)
        return self

    @abstractmethod
    def _train(self, X: torch.Tensor, y: torch.Tensor, codes: np.ndarray,
               groups: np.ndarray | None, train_idx: list[np.ndarray],
               val_idx: list[np.ndarray], seeds: list[int]) -> TrainReport | dict:
        """Build ``self.net_`` and train it."""

    @abstractmethod
    def _build(self, n_members: int, seeds: list[int]) -> torch.nn.Module:
        """Build an untrained network with ``n_members`` members."""

    @abstractmethod
    def _run_logits(self, X: torch.Tensor, codes: np.ndarray | None) -> torch.Tensor:
        """Logits ``(n_runs, n)`` of every run."""

    # ------------------------------------------------------------------ prediction
    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit first.")

    def _raw_runs(self, X: Any, sensitive_features: Any) -> torch.Tensor:
        """The network outputs ``(n_runs, n)`` of every run: logits of a classifier, a
        regressor's predictions in the target's units."""
        self._check_fitted()
        Xa, groups = self._inputs(X, sensitive_features, fitting=False)
        codes = self._group_codes(groups) if (groups is not None and self.groups_
                                              and self.requires_groups_predict) else None
        self.net_.eval()
        with torch.no_grad(), set_threads(self.n_threads):
            return self._run_logits(torch.from_numpy(Xa), codes)

    def predict_proba_runs(self, X: Any, sensitive_features: Any = None) -> np.ndarray:
        """P(y = classes_[1]) of every run: array of shape (n_runs, n_samples)."""
        return torch.sigmoid(self._raw_runs(X, sensitive_features)).numpy().astype(np.float64)

    def predict_proba(self, X: Any, sensitive_features: Any = None) -> np.ndarray:
        """Class probabilities, shape (n_samples, 2), columns ordered as ``classes_``.

        With several runs (after :meth:`fit_runs`) the runs' probabilities are averaged.
        """
        p1 = self.predict_proba_runs(X, sensitive_features).mean(0)
        return np.column_stack([1.0 - p1, p1])

    def predict(self, X: Any, sensitive_features: Any = None) -> np.ndarray:
        """Predicted class (threshold 0.5 on P(classes_[1]))."""
        p1 = self.predict_proba(X, sensitive_features)[:, 1]
        return self.classes_[(p1 >= 0.5).astype(int)]

    def score(self, X: Any, y: Any, sample_weight: Any = None, *,
              sensitive_features: Any = None) -> float:
        """Accuracy (R² for a regressor), predicting with the groups when the model needs
        them; what scikit-learn's model selection calls."""
        from sklearn.metrics import accuracy_score, r2_score
        pred = self.predict(X, sensitive_features=sensitive_features)
        if self._regression:
            return float(r2_score(y, pred, sample_weight=sample_weight))
        return float(accuracy_score(y, pred, sample_weight=sample_weight))

    # ------------------------------------------------------------------ persistence
    def _extra_state(self) -> dict:
        return {}

    def _set_extra_state(self, state: dict) -> None:
        pass

    def save(self, path: str | Path) -> Path:
        """Save to a directory: ``config.json`` + ``model.safetensors`` (no pickle)."""
        self._check_fitted()
        cfg = {
            "class": type(self).__name__, "params": self.get_params(deep=False),
            "classes": [c.item() if hasattr(c, "item") else c for c in self.classes_],
            "groups": list(self.groups_), "feature_names": list(self.feature_names_in_),
            "n_runs": self.n_runs_, "n_members": self._n_members(), "extra": self._extra_state(),
            "missing_indicators": list(getattr(self, "missing_indicators_", [])),
        }
        return write_model(path, cfg, self.net_)

    def _n_members(self) -> int:
        return self.n_runs_

    @classmethod
    def load(cls, path: str | Path) -> "NetClassifier":
        """Load a model saved with :meth:`save` (checks the format version)."""
        path, cfg = read_model_config(path)
        klass = _REGISTRY.get(cfg.get("class", ""))
        if klass is None or not issubclass(klass, cls):
            raise PersistenceError(f"{path} holds a {cfg.get('class')!r}, not a {cls.__name__}.")
        with changed_config(path):
            params = dict(cfg["params"])
            params.setdefault("impute", "none")          # saved before imputation existed
            est = klass(**params)
            est.missing_indicators_ = [int(i) for i in cfg.get("missing_indicators", [])]
            est.classes_ = np.array(cfg["classes"])
            est.groups_ = list(cfg["groups"])
            est.feature_names_in_ = list(cfg["feature_names"])
            est.n_features_in_ = len(est.feature_names_in_)
            est.n_runs_ = int(cfg["n_runs"])
            est._set_extra_state(cfg.get("extra", {}))
            net = est._build(int(cfg["n_members"]), list(range(int(cfg["n_members"]))))
        est.net_ = load_weights(path, cfg, net)
        return est


def write_model(path: str | Path, cfg: dict, net: torch.nn.Module) -> Path:
    """``path/config.json`` (``cfg`` with the format, version and a checksum of the weights
    and routing fields) and ``path/model.safetensors``: the one writer of saved models."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise PersistenceError(f"{path} is a file; save a model to a directory.")
    path.mkdir(parents=True, exist_ok=True)
    cfg = {"format": "noharm-model", "format_version": FORMAT_VERSION,
           "noharm_version": __version__, **cfg}
    tensors = {k: v.detach().contiguous().clone() for k, v in net.state_dict().items()}
    cfg["tensors_sha256"] = _tensor_digest(tensors, cfg)
    try:
        save_file(tensors, str(path / "model.safetensors"))
        (path / "config.json").write_text(json.dumps(cfg, indent=2))
    except OSError as exc:
        raise PersistenceError(f"cannot save the model to {path} ({exc.strerror}); choose a "
                               "writable directory.") from None
    return path


def read_model_config(path: str | Path) -> tuple[Path, dict]:
    """The checked ``config.json`` of a saved model directory."""
    path = Path(path)
    cfg_file, tensor_file = path / "config.json", path / "model.safetensors"
    if cfg_file.is_file() and not tensor_file.is_file() and (path / "models.skops").is_file():
        raise PersistenceError(f"{path} holds a scikit-learn reference model (models.skops), "
                               "not a network; load it with "
                               "noharm.models.persistence.load_model(dir).")
    if not cfg_file.is_file() or not tensor_file.is_file():
        raise PersistenceError(f"{path} is not a saved noharm model (needs config.json and "
                               "model.safetensors); save one with model.save(dir).")
    return path, parse_model_config(path, cfg_file)


def parse_model_config(path: Path, cfg_file: Path) -> dict:
    """A saved model's ``config.json``: valid JSON in noharm's model format and version."""
    try:
        cfg = json.loads(cfg_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PersistenceError(f"{cfg_file} is not valid JSON ({exc}); re-save the model."
                               ) from None
    except OSError as exc:
        raise PersistenceError(f"cannot read {cfg_file} ({exc.strerror}).") from None
    if not isinstance(cfg, dict) or cfg.get("format") != "noharm-model" or \
            cfg.get("format_version") != FORMAT_VERSION:
        version = cfg.get("format_version") if isinstance(cfg, dict) else None
        raise PersistenceError(
            f"{path} was saved in model format {version!r}; this noharm ({__version__}) "
            f"reads format {FORMAT_VERSION}; re-save it with a matching version.")
    return cfg


class changed_config:
    """Context: a config whose fields no longer build the model is a PersistenceError."""

    def __init__(self, path: Path) -> None:
        self.file = Path(path) / "config.json"

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if kind is not None and issubclass(kind, (TypeError, KeyError, ValueError,
                                                   AttributeError)) and \
                not issubclass(kind, PersistenceError):
            raise PersistenceError(f"{self.file} was changed after saving and no longer "
                                   f"describes a model ({kind.__name__}: {exc}); re-save "
                                   "the model.") from None
        return False


def load_weights(path: Path, cfg: dict, net: torch.nn.Module) -> torch.nn.Module:
    """Read ``model.safetensors`` into ``net`` after checking the saved checksum."""
    tensor_file = path / "model.safetensors"
    try:
        tensors = load_file(str(tensor_file))
    except Exception as exc:       # safetensors raises its own error types
        raise PersistenceError(f"{tensor_file} is damaged ({exc}); re-save the model."
                               ) from None
    expected = cfg.get("tensors_sha256")
    if expected is not None and _tensor_digest(tensors, cfg) != expected:
        raise PersistenceError(
            f"{path} was changed after saving: the weights in {tensor_file.name} or the "
            "groups, classes or features in config.json differ from what was saved "
            "(checksum differs); re-save the model.")
    try:
        net.load_state_dict(tensors)
    except (RuntimeError, KeyError) as exc:
        raise PersistenceError(f"{tensor_file} does not match its config: {exc}") from None
    net.eval()
    return net

