"""The deployable guarded model (DESIGN §9): per group, a personalized candidate where
held-out guard data proves it helps (Holm-corrected over groups x candidates), the
reference elsewhere, with a certificate per group.

**The guarantee, in plain words.**  Every model is fitted on the rows outside a held-out
guard part; the guard rows are then scored once by exactly the fitted models that are
deployed.  The probability that the guarded model deploys personalization for *any*
group where, on data drawn like the training data, it is not truly better than the
reference (than every generic reference, when several are given) is at most ``alpha``.
It covers these fitted models and the population the training rows come from; it does
not cover another hospital, a shifted case mix or a later time (validate the saved model
on such data), and a group with little guard data simply keeps the reference.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from .. import __version__
from .._validation import (align_features, check_binary_y, check_fraction, check_groups,
                           check_positive_int, check_X)
from ..guard import MIN_GUARD_UNITS, deploy, guard_tests, predict_p1
from ..losses import pointwise_loss
from ..errors import ConfigError, PersistenceError
from .base import NotFittedError
from ..splits import guard_runs
from .any_estimator import as_runs_model
from .conditional_bias import ConditionalBiasClassifier
from .generic import GenericClassifier

GUARD_FORMAT = 2


class GuardedClassifier(ClassifierMixin, BaseEstimator):
    """Personalize a group only where held-out guard data shows that it helps.

    Parameters
    ----------
    reference : estimator or dict name -> estimator, default ``{"generic":
        GenericClassifier()}``: the generic (group-blind) models.  Any scikit-learn
        classifier works here and as a candidate (wrapped in
        :class:`~noharm.models.any_estimator.EstimatorClassifier`).  With several, a
        candidate is deployed for a group only if it beats **every** one of them
        (intersection-union test, so no reference is selected on the tested rows); the
        one with the lowest guard log-loss is the fallback for the other groups.
    candidates : dict name -> estimator, default ``{"conditional-bias":
        ConditionalBiasClassifier()}``: the personalized models.
    prefit : bool, default False.  False: ``fit`` holds out ``guard_size`` of its rows
        (stratified by group x label, grouped by ``patient_ids``), fits every model on the
        rest as an ensemble of ``n_seeds`` x ``n_folds`` members (member *k* early-stops
        on fold *k*) and scores the guard rows once with the fitted ensembles — the
        models that are deployed.  True: the models are already fitted and ``fit``
        receives held-out guard data only.
    metric : ``"log-loss"`` (default), ``"zero-one"`` or ``"auroc"`` — the loss of the
        guard's paired test (see :mod:`noharm.guard`).
    alpha : family-wise error level over groups x candidates (Holm), default 0.05.
    margin : 0 (superiority, default) or > 0: non-inferiority by ``margin``.
    guard_size : share of the rows held out as guard rows, default 0.3.
    n_seeds, n_folds : the members of each fitted ensemble (default 5 x 5 = 25, as the
        study): the seeds also measure how much two fits of one model differ, which the
        guard's test counts (with one seed it tests these fits only).
    min_units : groups with fewer guard units (patients, else rows) keep the reference
        untested, default 20.
    random_state : seed of the split and of the members.

    Attributes
    ----------
    certificate_ : DataFrame, one row per group: ``deployed`` model, ``reference``
        (the fallback), ``n`` guard units, ``effect`` (reference loss minus candidate
        loss; positive = helps) with its 95 % CI, ``p_value``, Holm ``p_holm``,
        ``detectable`` (the smallest effect this n could detect) and ``versus`` (the
        generic model the binding comparison was against).
    tests_ : every (group, candidate) test.
    routing_ : dict group -> deployed model name.
    reference_ : name of the fallback reference; models_ : fitted models by name.
    guard_rows_ : the indices of the guard rows (``prefit=False``).
    """

    def __init__(self, reference: Any = None, candidates: dict | None = None, *,
                 prefit: bool = False, metric: str = "log-loss", alpha: float = 0.05,
                 margin: float = 0.0, guard_size: float = 0.3, n_seeds: int = 5,
                 n_folds: int = 5, min_units: int = MIN_GUARD_UNITS, random_state: int = 0):
        self.reference = reference
        self.candidates = candidates
        self.prefit = prefit
        self.metric = metric
        self.alpha = alpha
        self.margin = margin
        self.guard_size = guard_size
        self.n_seeds = n_seeds
        self.n_folds = n_folds
        self.min_units = min_units
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
        if self.prefit:
            return refs, cands
        # any scikit-learn classifier: one seeded clone per run (EstimatorClassifier)
        return ({k: as_runs_model(v) for k, v in refs.items()},
                {k: as_runs_model(v) for k, v in cands.items()})

    def fit(self, X: Any, y: Any, *, sensitive_features: Any,
            patient_ids: Any = None) -> "GuardedClassifier":
        """Fit every model on the non-guard rows (or, with ``prefit``, only score), test
        per group on the guard rows, route.

        ``patient_ids`` : one id per row when a patient has several rows: a patient's
        rows stay on one side of the split and count as one unit in the tests."""
        refs, cands = self._models()
        Xa, names = check_X(X, allow_nan=True)      # each model checks missing values
        y01, classes = check_binary_y(y, n_rows=Xa.shape[0])
        groups = check_groups(sensitive_features, n_rows=Xa.shape[0])
        ids = None
        if patient_ids is not None:
            ids = np.asarray(patient_ids).astype(str)
            if ids.shape != (Xa.shape[0],):
                raise ConfigError(f"patient_ids has {ids.size} values for {Xa.shape[0]} rows; "
                                  "give one id per row.")
        if self.prefit:
            fitted = {**refs, **cands}
            for name, m in fitted.items():
                if not (hasattr(m, "classes_") or hasattr(m, "net_")):
                    raise NotFittedError(f"the {name} model is not fitted; with prefit=True "
                                         "pass fitted models and held-out guard data.")
            guard = np.arange(len(y01))
        else:
            check_fraction(self.guard_size, name="guard_size", high=0.9)
            check_positive_int(self.n_folds, name="n_folds", minimum=2)
            guard, runs = guard_runs(groups, y01, guard_size=self.guard_size,
                                     n_seeds=self.n_seeds, n_folds=self.n_folds,
                                     random_state=self.random_state, ids=ids)
            fitted = {}
            for name, est in {**refs, **cands}.items():
                # members seeded by the guard's seed, the run and the model's own seed
                own = int(getattr(est, "random_state", 0) or 0)
                fitted[name] = clone(est).fit_runs(
                    X, y01, sensitive_features=groups,
                    train_indices=[r["train"] for r in runs],
                    val_indices=[r["early_stop"] for r in runs],
                    seeds=[self.random_state * 100 + r["model_seed"] + 100_003 * own
                           for r in runs])
            self.guard_rows_ = guard
        Xg = X.iloc[guard] if hasattr(X, "iloc") else np.asarray(X)[guard]
        run_seeds = None if self.prefit else np.array([r["seed"] for r in runs])
        p = {name: _by_seed(m, Xg, groups[guard], run_seeds) for name, m in fitted.items()}
        yg, gg = y01[guard], groups[guard]
        losses = {name: float(np.mean(pointwise_loss(
            yg, p[name].mean(0) if p[name].ndim == 2 else p[name], "log_loss")))
            for name in refs}
        self.reference_ = min(losses, key=losses.get)
        self.reference_losses_ = losses
        self.tests_ = guard_tests(yg, gg, {r: p[r] for r in refs}, {c: p[c] for c in cands},
                                  metric=self.metric, alpha=self.alpha, margin=self.margin,
                                  ids=None if ids is None else ids[guard],
                                  min_units=self.min_units, random_state=self.random_state)
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
        p = np.array(predict_p1(self.models_[self.reference_], X, groups), dtype=float)
        for name in sorted(set(self.routing_.values()) - {self.reference_}):
            use = np.array([self.routing_.get(g) == name for g in groups])
            if use.any():              # each candidate sees only the rows it is deployed for
                rows = X.iloc[use] if hasattr(X, "iloc") else np.asarray(X)[use]
                p[use] = predict_p1(self.models_[name], rows, groups[use])
        return np.column_stack([1 - p, p])

    def predict(self, X: Any, *, sensitive_features: Any) -> np.ndarray:
        p1 = self.predict_proba(X, sensitive_features=sensitive_features)[:, 1]
        return self.classes_[(p1 >= 0.5).astype(int)]

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Save to a new directory: ``guard.json`` (certificate, routing), every deployed
        model under ``models/`` (networks as safetensors, scikit-learn models with skops:
        no pickle) and ``checksums.json`` (sha256 of every file, checked on load)."""
        if not hasattr(self, "routing_"):
            raise NotFittedError("this GuardedClassifier is not fitted yet; call fit first.")
        return write_guard(path, reference=self.reference_, routing=self.routing_,
                           certificate=self.certificate_, sources=self.models_,
                           classes=list(self.classes_),
                           feature_names=list(self.feature_names_in_), metric=self.metric,
                           alpha=self.alpha, margin=self.margin)

    @classmethod
    def load(cls, path: str | Path) -> "GuardedClassifier":
        """Load a guarded model saved by :meth:`save` or by ``noharm personalize --output``
        (``DIR/models/guarded/split<o>``).  Every file's checksum is verified and the
        routing checked against the saved models: a modified or inconsistent directory
        is a PersistenceError."""
        from .persistence import load_model, verify_checksums
        path = Path(path)
        if not (path / "guard.json").is_file():
            raise PersistenceError(f"{path} is not a saved GuardedClassifier (no guard.json); "
                                   "save one with model.save(dir).")
        verify_checksums(path)
        try:
            meta = json.loads((path / "guard.json").read_text())
            if meta.get("format") != "noharm-guarded" or \
                    meta.get("format_version") != GUARD_FORMAT:
                raise ValueError("not a noharm guarded model of format "
                                 f"{GUARD_FORMAT}")
            est = cls(metric=meta["metric"], alpha=meta["alpha"], margin=meta["margin"])
            est.reference_, est.routing_ = str(meta["reference"]), dict(meta["routing"])
            est.classes_ = np.array(meta["classes"])
            est.feature_names_in_ = list(meta["feature_names"])
            est.n_features_in_ = len(est.feature_names_in_)
            est.certificate_ = pd.DataFrame(meta["certificate"])
            dirs = {str(k): str(v) for k, v in dict(meta["models"]).items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PersistenceError(f"{path} is not a saved GuardedClassifier ({exc}); save "
                                   "one with model.save(dir).") from None
        _check_guard(path, est, dirs)
        est.models_ = {n: load_model(path / d) for n, d in dirs.items()}
        for n, m in est.models_.items():
            if [str(c) for c in m.classes_] != [str(c) for c in est.classes_] or \
                    list(m.feature_names_in_) != est.feature_names_in_:
                raise PersistenceError(f"{path}: guard.json's classes or feature names do "
                                       f"not match the saved model {n!r}; the file was "
                                       "edited: save the guarded model again.")
        return est


def _by_seed(model: Any, X: Any, groups: np.ndarray, run_seeds: np.ndarray | None
             ) -> np.ndarray:
    """P(y = 1) of a fitted model on the guard rows: ``(seeds, rows)`` per-seed
    sub-ensembles of a model fitted here (their mean is the deployed prediction), else
    the deployed prediction ``(rows,)``."""
    if run_seeds is None or len(np.unique(run_seeds)) < 2 or \
            not hasattr(model, "predict_proba_runs"):
        return predict_p1(model, X, groups)
    runs = np.asarray(model.predict_proba_runs(X, sensitive_features=groups))
    if len(runs) != len(run_seeds):
        return predict_p1(model, X, groups)
    return np.stack([runs[run_seeds == s].mean(0) for s in np.unique(run_seeds)])


def _check_guard(path: Path, est: GuardedClassifier, dirs: dict[str, str]) -> None:
    """Refuse a guard.json whose routing names a model it does not hold, whose classes
    are not two distinct labels, or whose certificate disagrees with its routing."""
    problems = []
    if est.reference_ not in dirs:
        problems.append(f"the reference {est.reference_!r} is not among its models "
                        f"{sorted(dirs)}")
    unknown = sorted(set(est.routing_.values()) - set(dirs))
    if unknown:
        problems.append(f"the routing names unknown model(s) {unknown}")
    if len(est.classes_) != 2 or est.classes_[0] == est.classes_[1]:
        problems.append(f"classes {list(est.classes_)} are not two distinct labels")
    for d in dirs.values():
        if Path(d).is_absolute() or ".." in Path(d).parts:
            problems.append(f"model directory {d!r} is outside the saved model")
    cert = est.certificate_
    if not {"group", "deployed"} <= set(cert.columns) or dict(
            zip(cert["group"].astype(str), cert["deployed"].astype(str))) != est.routing_:
        problems.append("its certificate does not match its routing")
    if problems:
        raise PersistenceError(f"{path}/guard.json is inconsistent: {'; '.join(problems)}; "
                               "save the guarded model again.")


def write_guard(path: str | Path, *, reference: str, routing: dict, certificate: pd.DataFrame,
                sources: dict[str, Any], classes: list, feature_names: list[str],
                metric: str, alpha: float, margin: float) -> Path:
    """Write a self-contained guarded model to the new directory ``path``: each deployed
    model under ``models/<name>`` (``sources`` maps a name to a fitted model, saved here,
    or to the directory of a saved one, copied), ``guard.json`` and ``checksums.json``.
    An existing non-empty directory is refused (nothing is overwritten)."""
    import shutil
    from .persistence import write_checksums
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise PersistenceError(f"{path} exists and is not empty; save the guarded model to "
                               "a new directory (or remove the old one first).")
    needed = {reference, *map(str, routing.values())}
    if needed - set(sources):
        raise PersistenceError(f"no saved model for {sorted(needed - set(sources))}.")
    path.mkdir(parents=True, exist_ok=True)
    for name in sorted(needed):
        src, dest = sources[name], path / "models" / name
        if isinstance(src, (str, Path)):
            shutil.copytree(src, dest)
        elif hasattr(src, "save"):
            src.save(dest)
        else:
            raise PersistenceError(f"the deployed model {name!r} ({type(src).__name__}) "
                                   "cannot be saved.")
    meta = {"format": "noharm-guarded", "format_version": GUARD_FORMAT,
            "noharm_version": __version__, "reference": reference,
            "routing": {str(k): str(v) for k, v in routing.items()}, "metric": metric,
            "alpha": alpha, "margin": margin,
            "models": {n: f"models/{n}" for n in sorted(needed)},
            "classes": [c.item() if hasattr(c, "item") else c for c in classes],
            "feature_names": list(feature_names),
            "certificate": json.loads(certificate.to_json(orient="records"))}
    (path / "guard.json").write_text(json.dumps(meta, indent=2))
    write_checksums(path)
    return path


def certificate_from_results(guard: pd.DataFrame) -> dict[int, dict]:
    """Per outer split, the stored guard decision of a study's ``results.csv`` rows
    (role ``guard``): ``reference`` and ``certificate`` (one row per subgroup: deployed,
    reference, n, effect, ci_low, ci_high, p_value, p_holm, detectable)."""
    out = {}
    for outer, g in guard.groupby("outer_split"):
        dep = g[g["metric"] == "deployed"]
        reference = str(g.loc[g["metric"] == "reference", "model"].iloc[0])
        stats = g[g["model"] == "guarded"].pivot_table(index="subgroup", columns="metric",
                                                        values="value")
        cert = dep[["subgroup", "model", "n"]].rename(columns={"subgroup": "group",
                                                                "model": "deployed"})
        cert = cert.astype({"group": str, "deployed": str})
        cert.insert(2, "reference", reference)
        for k in ("effect", "ci_low", "ci_high", "p_value", "p_holm", "detectable"):
            cert[k] = cert["group"].map(stats.get(f"guard_{k}", {}))
        out[int(outer)] = {"reference": reference, "certificate": cert.reset_index(drop=True)}
    return out


def export_study_guard(results: pd.DataFrame, model_dir: str | Path, options: dict
                       ) -> dict[int, Path | str]:
    """Build each outer split's deployable guarded model from a finished personalization
    run: ``model_dir/guarded/split<o>`` from the stored certificate (``results``' guard
    rows) and the saved models ``model_dir/<model>/split<o>``.  Returns per outer split
    the directory written, or the reason it could not be (a model not saved)."""
    from .persistence import load_model
    model_dir = Path(model_dir)
    out: dict[int, Path | str] = {}
    for outer, dec in certificate_from_results(results[results["role"] == "guard"]).items():
        cert, reference = dec["certificate"], dec["reference"]
        routing = dict(zip(cert["group"], cert["deployed"]))
        names = sorted({reference, *routing.values()})
        dirs = {m: model_dir / m / f"split{outer}" for m in names}
        missing = [m for m, d in dirs.items() if not d.is_dir()]
        if missing:
            out[outer] = (f"{', '.join(missing)} was not saved as one model (its runs were "
                          "split over several parts: raise --ensemble-size)")
            continue
        target = model_dir / "guarded" / f"split{outer}"
        if (target / "guard.json").is_file():      # a resumed run: keep what it wrote
            kept = GuardedClassifier.load(target)
            if kept.reference_ != reference or kept.routing_ != routing:
                raise PersistenceError(f"{target} holds another guarded model; write this "
                                       "run to a new --output directory.")
            out[outer] = target
            continue
        ref = load_model(dirs[reference])
        out[outer] = write_guard(target, reference=reference,
                                 routing=routing, certificate=cert, sources=dirs,
                                 classes=list(ref.classes_),
                                 feature_names=list(ref.feature_names_in_),
                                 metric=options["guard_metric"], alpha=options["guard_alpha"],
                                 margin=options["margin"])
    return out


__all__ = ["GuardedClassifier", "certificate_from_results", "export_study_guard",
           "write_guard"]
