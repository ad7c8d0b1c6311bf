"""Generic vs MEDL vs fair MEDL (issue 6): performance on seen and unseen clusters and
fairness per sensitive attribute, for classification and regression.

Per seed:

* **unseen clusters**: clusters of at least 50 rows (never the largest) are drawn at
  random until they hold ``unseen_share`` of the rows; all their rows form the
  unseen-cluster test set (rows of patients who also appear in training are dropped);
* the other rows are split 60 / 20 / 20 into train / validation / seen-cluster test,
  keeping a patient's rows together when the cohort has ids.  Classification picks
  the decision threshold that maximizes balanced accuracy on validation.

Models (one fixed-effects architecture for all): ``generic`` = the fixed-effects net
alone (no random effects, no adversary); ``medl`` = + random effects and the cluster
adversary; ``fair-medl`` = + fairness adversaries.  Seen-cluster rows are predicted
with mixed effects, unseen ones with fixed effects.

Fairness (seen-cluster test set, DESIGN §5): the sd across groups of TPR and of FPR
(classification) or of the per-group MSE (regression), per attribute, and the
% improvement of fair-MEDL over MEDL, ``100 * (1 - fair / medl)``.
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupShuffleSplit, train_test_split

from .._validation import (check_choice, check_fraction, check_positive_int,
                           check_sensitive_columns)
from ..datasets import Cohort
from ..errors import ColumnNotFoundError, ConfigError, GroupError
from ..fairness import best_threshold
from ..fairness.metrics import rates_by_group
from ..models import MixedEffectsClassifier, MixedEffectsRegressor
from ..models.mixed_effects import SmallClusterWarning
from ..training import TrainConfig
from .backends import execute

MEDL_MODELS = ("generic", "medl", "fair-medl")
#: Largest improvements reported by the fair-MEDL paper (sd of TPR/FPR, per attribute).
PAPER_IMPROVEMENT = {"age": 82.0, "race": 43.0, "sex": 86.0, "gender": 86.0}


@dataclass
class MedlConfig:
    """Everything that defines a MEDL comparison."""

    clusters: str = ""
    sensitive: tuple[str, ...] = ()
    models: tuple[str, ...] = MEDL_MODELS
    task: str = "classification"
    n_seeds: int = 3
    unseen_share: float = 0.1
    hidden_layers: int = 3
    hidden_units: int = 64
    batch_size: int = TrainConfig.batch_size
    max_epochs: int = TrainConfig.max_epochs
    patience: int = TrainConfig.patience
    adversary_weight: float = 0.1
    kl_weight: float = 1e-3
    fairness_weight: float = 1.0
    n_jobs: int = 1

    def validate(self, cohort: Cohort) -> "MedlConfig":
        check_choice(self.task, name="--task", choices=("classification", "regression"))
        for m in self.models:
            if m not in MEDL_MODELS:
                raise ConfigError(f"model {m!r} cannot run in the mixed-effects comparison; "
                                  f"with medl use only {', '.join(MEDL_MODELS)}.")
        if not self.clusters:
            raise ConfigError("the mixed-effects comparison needs --clusters COL (e.g. "
                              "admission_source_id).")
        self.sensitive = check_sensitive_columns(cohort.groups, self.sensitive, cohort.name)
        check_positive_int(self.n_seeds, name="n_seeds")
        check_positive_int(self.n_jobs, name="n_jobs")
        check_fraction(self.unseen_share, name="unseen_share", high=0.5)
        return self


def cluster_column(X: pd.DataFrame, name: str) -> tuple[np.ndarray, pd.DataFrame]:
    """Cluster labels from column ``name`` of X (or from its one-hot columns ``name_*``);
    returns the labels and X without those columns (no model sees the cluster id)."""
    if name in X.columns:
        labels = X[name].astype(str).to_numpy()
        return labels, X.drop(columns=[name])
    onehot = [c for c in X.columns if str(c).startswith(f"{name}_")]
    if not onehot:
        stems = sorted({str(c).rsplit("_", 1)[0] for c in X.columns if "_" in str(c)})
        raise ColumnNotFoundError(f"--clusters {name!r} is neither a column nor a one-hot "
                                  f"prefix of the data; candidates: {', '.join(stems[:12])}.")
    block = X[onehot].to_numpy()
    if not np.allclose(block.sum(1), 1):
        raise ConfigError(f"the one-hot columns {name}_* do not hold exactly one 1 per row.")
    labels = np.array([c[len(name) + 1:] for c in onehot])[block.argmax(1)]
    return labels, X.drop(columns=onehot)


def _splits(cohort: Cohort, clusters: np.ndarray, cfg: MedlConfig, seed: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """train, validation, seen-cluster test, unseen-cluster test row indices."""
    rng = np.random.default_rng([seed, 6])
    n = len(clusters)
    values, counts = np.unique(clusters, return_counts=True)
    order = rng.permutation(len(values))
    largest = values[counts.argmax()]
    unseen, held = [], 0
    for i in order:
        if values[i] == largest or counts[i] < 50 or held + counts[i] > 3 * cfg.unseen_share * n:
            continue
        unseen.append(values[i])
        held += counts[i]
        if held >= cfg.unseen_share * n:
            break
    if not unseen:
        raise GroupError(f"no cluster of --clusters {cfg.clusters!r} can be held out as "
                         "unseen (need one with at least 50 rows besides the largest).")
    is_unseen = np.isin(clusters, unseen)
    seen = np.flatnonzero(~is_unseen)
    ids = None if cohort.split_by is None else cohort.split_by.to_numpy()
    if ids is None:
        strat = None if cfg.task == "regression" else cohort.y.to_numpy()[seen]
        rest, te = train_test_split(seen, test_size=0.2, random_state=seed, stratify=strat)
        strat = None if cfg.task == "regression" else cohort.y.to_numpy()[rest]
        tr, va = train_test_split(rest, test_size=0.25, random_state=seed, stratify=strat)
    else:
        gss = GroupShuffleSplit(1, test_size=0.2, random_state=seed)
        a, b = next(gss.split(seen, groups=ids[seen]))
        rest, te = seen[a], seen[b]
        gss = GroupShuffleSplit(1, test_size=0.25, random_state=seed + 1)
        a, b = next(gss.split(rest, groups=ids[rest]))
        tr, va = rest[a], rest[b]
    unseen_rows = np.flatnonzero(is_unseen)
    if ids is not None:
        unseen_rows = unseen_rows[~np.isin(ids[unseen_rows], ids[tr])]
    return np.sort(tr), np.sort(va), np.sort(te), unseen_rows


def _estimator(model: str, cfg: MedlConfig, seed: int):
    cls = MixedEffectsClassifier if cfg.task == "classification" else MixedEffectsRegressor
    kw = dict(hidden_layers=cfg.hidden_layers, hidden_units=cfg.hidden_units,
              batch_size=cfg.batch_size, max_epochs=cfg.max_epochs, patience=cfg.patience,
              kl_weight=cfg.kl_weight, random_state=seed)
    if model == "generic":
        return cls(adversary_weight=0.0, random_effects=False, **kw)
    return cls(adversary_weight=cfg.adversary_weight,
               fairness_weight=cfg.fairness_weight if model == "fair-medl" else 0.0, **kw)


def _sd_rates(y: np.ndarray, pred: np.ndarray, g: np.ndarray) -> tuple[float, float]:
    tpr, fpr = rates_by_group(y, pred, g)
    return float(np.std(tpr)), float(np.std(fpr))


def _task(seed: int, model: str, *, X: np.ndarray, y: np.ndarray, clusters: np.ndarray,
          S: pd.DataFrame, splits: dict, cfg: MedlConfig) -> list[dict]:
    """Train one model for one seed and measure it (a unit of parallel work)."""
    tr, va, te, un = splits[seed]
    est = _estimator(model, cfg, seed)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallClusterWarning)
        est.fit(X[tr], y[tr], clusters=clusters[tr],
                sensitive_features=S.iloc[tr] if model == "fair-medl" else None)
    seconds = time.perf_counter() - t0
    epochs = int(est.train_report_.epochs_run[0])
    rows = [{"seed": seed, "model": model, "attribute": "all", "metric": "seconds",
             "value": seconds}, {"seed": seed, "model": model, "attribute": "all",
                                 "metric": "epochs", "value": epochs}]
    if cfg.task == "classification":
        threshold, _ = best_threshold(y[va], est.predict_proba(X[va], clusters[va])[:, 1])
        p_seen = est.predict_proba(X[te], clusters[te])[:, 1]
        for part, rows_, cl in (("seen", te, clusters[te]), ("unseen", un, None)):
            if len(rows_) and len(np.unique(y[rows_])) > 1:
                p = p_seen if part == "seen" else est.predict_proba(X[rows_], cl)[:, 1]
                rows.append({"seed": seed, "model": model, "attribute": "all",
                             "metric": f"auroc_{part}", "value": roc_auc_score(y[rows_], p)})
        pred = (p_seen >= threshold).astype(int)
        for attr in S.columns:
            sd_tpr, sd_fpr = _sd_rates(y[te], pred, S[attr].to_numpy()[te])
            rows += [{"seed": seed, "model": model, "attribute": attr, "metric": "sd_tpr",
                      "value": sd_tpr},
                     {"seed": seed, "model": model, "attribute": attr, "metric": "sd_fpr",
                      "value": sd_fpr}]
    else:
        for part, rows_, cl in (("seen", te, clusters[te]), ("unseen", un, None)):
            if len(rows_):
                err = (est.predict(X[rows_], cl) - y[rows_]) ** 2
                rows.append({"seed": seed, "model": model, "attribute": "all",
                             "metric": f"mse_{part}", "value": float(err.mean())})
                if part == "seen":
                    for attr in S.columns:
                        g = S[attr].to_numpy()[rows_]
                        rows.append({"seed": seed, "model": model, "attribute": attr,
                                     "metric": "sd_mse", "value": float(np.std(
                                         [err[g == v].mean() for v in np.unique(g)]))})
    return rows


def run_medl(cohort: Cohort, config: MedlConfig,
             progress: Callable[[str], None] | None = None) -> tuple[pd.DataFrame, dict]:
    """Tidy rows (seed, model, attribute, metric, value) and the run information."""
    cfg = config.validate(cohort)
    say = progress or (lambda s: None)
    clusters, Xf = cluster_column(cohort.X, cfg.clusters)
    X = Xf.to_numpy(np.float32)
    y = cohort.y.to_numpy()
    if cfg.task == "classification":
        if len(np.unique(y)) != 2:
            raise ConfigError(f"--task classification needs a binary target; {cohort.name}'s "
                              "has other values (use --task regression).")
        y = y.astype(int)
    else:
        y = y.astype(np.float64)
    S = cohort.groups[list(cfg.sensitive)].astype(str).reset_index(drop=True)
    seeds = list(range(1, cfg.n_seeds + 1))
    splits = {s: _splits(cohort, clusters, cfg, s) for s in seeds}
    for s in seeds:
        tr, va, te, un = splits[s]
        say(f"seed {s}: {len(tr)} train, {len(va)} validation, {len(te)} seen-cluster test, "
            f"{len(un)} unseen-cluster test rows ({cfg.clusters} held out: "
            f"{', '.join(sorted(set(clusters[un])))})")
    tasks = [(s, m) for s in seeds for m in cfg.models]
    shared = dict(X=X, y=y, clusters=clusters, S=S, splits=splits, cfg=cfg)
    rows: list[dict] = []
    for i, out in execute(_task, tasks, shared, n_jobs=cfg.n_jobs):
        rows += out
        secs = next(r["value"] for r in out if r["metric"] == "seconds")
        say(f"seed {tasks[i][0]}: {tasks[i][1]} trained in {secs:.1f} s")
    results = pd.DataFrame(rows).sort_values(["seed", "model", "attribute", "metric"],
                                             kind="stable").reset_index(drop=True)
    info = {"medl": {**asdict(cfg), "sensitive": list(cfg.sensitive),
                     "models": list(cfg.models)},
            "cohort": cohort.meta, "unseen_clusters": {
                s: sorted(set(clusters[splits[s][3]])) for s in seeds}}
    return results, info


def summarize_medl(results: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(performance + fairness table: metric x model, mean ± sd over seeds;
    improvement table: fair-MEDL over MEDL per attribute and metric, with the paper's)."""
    agg = results.groupby(["attribute", "metric", "model"])["value"].agg(["mean", "std"])
    table = []
    for (attr, metric), d in agg.groupby(level=[0, 1], sort=False):
        row = {"attribute": attr, "metric": metric}
        for (_, _, model), r in d.iterrows():
            sd = 0.0 if np.isnan(r["std"]) else r["std"]
            row[model] = f"{r['mean']:.4f} ± {sd:.4f}"
        table.append(row)
    perf = pd.DataFrame(table)
    order = [m for m in MEDL_MODELS if m in perf.columns]
    perf = perf[["attribute", "metric", *order]]
    imp = []
    means = agg["mean"]
    for (attr, metric, model), v in means.items():
        if model != "fair-medl" or not metric.startswith("sd_"):
            continue
        base = means.get((attr, metric, "medl"), np.nan)
        imp.append({"attribute": attr, "metric": metric, "medl": base, "fair-medl": v,
                    "improvement_pct": 100 * (1 - v / base) if base > 0 else np.nan,
                    "paper_best_pct": PAPER_IMPROVEMENT.get(attr, np.nan)})
    return perf, pd.DataFrame(imp)


__all__ = ["MedlConfig", "run_medl", "summarize_medl", "cluster_column", "MEDL_MODELS"]
