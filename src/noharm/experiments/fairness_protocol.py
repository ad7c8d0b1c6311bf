"""Generic vs FairGrad over several sensitive attributes (issue 5): per attribute, the
worst pairwise equal-opportunity and equalized-odds gaps on test data with bootstrap CIs,
AUROC and accuracy, and the relative reduction of every gap.

Per seed: 60 % train, 20 % validation (the decision threshold that maximizes balanced
accuracy there, DESIGN §5), 20 % test; splits keep a patient's rows together when the
cohort has ids."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from .._validation import check_positive_int, check_sensitive_columns
from ..datasets import Cohort
from ..errors import ConfigError
from ..fairness import balanced_accuracy, best_threshold
from ..fairness.metrics import rates_by_group
from ..training import TrainConfig
from ..models import FairGradClassifier, GenericClassifier

FAIR_MODELS = ("generic", "fairgrad")


def worst_gaps(y: np.ndarray, pred: np.ndarray, g: np.ndarray) -> tuple[float, float]:
    """(equal-opportunity gap, equalized-odds gap): worst pairwise TPR gap, and the larger of
    the worst TPR and FPR gaps, over the groups that have the needed labels."""
    tpr, fpr = rates_by_group(y, pred, g)
    eod = max(tpr) - min(tpr) if len(tpr) > 1 else np.nan
    fgap = max(fpr) - min(fpr) if len(fpr) > 1 else np.nan
    return float(eod), float(np.nanmax([eod, fgap]))


def _overall(y: np.ndarray, p: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy and AUROC (NaN where a class is missing)."""
    both = len(np.unique(y)) > 1
    return {"accuracy": float((pred == y).mean()),
            "balanced_accuracy": balanced_accuracy(y, pred) if both else np.nan,
            "auroc": float(roc_auc_score(y, p)) if both else np.nan}


@dataclass
class FairnessConfig:
    sensitive: tuple[str, ...] = ()
    models: tuple[str, ...] = FAIR_MODELS
    n_seeds: int = 3
    fairness_loss: str = "eqodds"
    projection: str = "conflict"
    fairness_weights: tuple[float, ...] | None = None
    hidden_layers: int = 6
    hidden_units: int = 64
    max_epochs: int = TrainConfig.max_epochs
    patience: int = TrainConfig.patience
    n_boot: int = 200

    def validate(self, cohort: Cohort) -> "FairnessConfig":
        for m in self.models:
            if m not in FAIR_MODELS:
                raise ConfigError(f"model {m!r} cannot run in the fairness comparison; with "
                                  f"fairgrad use only {', '.join(FAIR_MODELS)}.")
        self.sensitive = check_sensitive_columns(cohort.groups, self.sensitive, cohort.name)
        check_positive_int(self.n_seeds, name="n_seeds")
        return self


def _split(cohort: Cohort, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """60/20/20 train / threshold-validation / test (by ``split_by`` ids when present)."""
    y = cohort.y.to_numpy()
    idx = np.arange(len(y))
    if cohort.split_by is None:
        strat = np.char.add(cohort.subgroups.to_numpy().astype(str), y.astype(str))
        _, counts = np.unique(strat, return_counts=True)
        strat = strat if counts.min() >= 5 else y
        rest, te = train_test_split(idx, test_size=0.2, random_state=seed, stratify=strat)
        tr, va = train_test_split(rest, test_size=0.25, random_state=seed, stratify=strat[rest])
        return np.sort(tr), np.sort(va), np.sort(te)
    folds = list(StratifiedGroupKFold(5, shuffle=True, random_state=seed).split(
        idx, y, cohort.split_by.to_numpy()))
    te, va = folds[0][1], folds[1][1]
    return np.setdiff1d(idx, np.concatenate([te, va])), va, te


def run_fairness(cohort: Cohort, config: FairnessConfig,
                 progress: Callable[[str], None] | None = None) -> tuple[pd.DataFrame, dict]:
    """Tidy rows: seed, model, attribute ('all' for accuracy/AUROC), metric, value, CI."""
    cfg = config.validate(cohort)
    say = progress or (lambda s: None)
    X = cohort.X.to_numpy(np.float32)
    y = cohort.y.to_numpy().astype(int)
    S = cohort.groups[list(cfg.sensitive)].astype(str).reset_index(drop=True)
    rows, timings = [], {m: [] for m in cfg.models}
    for seed in range(1, cfg.n_seeds + 1):
        tr, va, te = _split(cohort, seed)
        rng = np.random.default_rng(seed)
        boot = [rng.integers(0, len(te), len(te)) for _ in range(cfg.n_boot)]
        for model in cfg.models:
            kw = dict(hidden_layers=cfg.hidden_layers, hidden_units=cfg.hidden_units,
                      max_epochs=cfg.max_epochs, patience=cfg.patience, random_state=seed)
            t0 = time.perf_counter()
            if model == "generic":
                est = GenericClassifier(**kw).fit(X[tr], y[tr])
            else:
                est = FairGradClassifier(fairness_loss=cfg.fairness_loss,
                                         projection=cfg.projection,
                                         fairness_weights=(list(cfg.fairness_weights)
                                                           if cfg.fairness_weights else None),
                                         **kw).fit(X[tr], y[tr], sensitive_features=S.iloc[tr])
            seconds = time.perf_counter() - t0
            epochs = int(est.train_report_.epochs_run[0])
            timings[model].append((seconds, epochs))
            threshold, _ = best_threshold(y[va], est.predict_proba(X[va])[:, 1])
            p = est.predict_proba(X[te])[:, 1]
            pred = (p >= threshold).astype(int)
            yt = y[te]
            point = _overall(yt, p, pred)
            reps = pd.DataFrame([_overall(yt[b], p[b], pred[b]) for b in boot])
            for name, value in point.items():
                rows.append({"seed": seed, "model": model, "attribute": "all", "metric": name,
                             "value": value, "ci_low": np.nanquantile(reps[name], 0.025),
                             "ci_high": np.nanquantile(reps[name], 0.975)})
            for attr in cfg.sensitive:
                g = S[attr].to_numpy()[te]
                est_gaps = worst_gaps(yt, pred, g)
                reps = np.array([worst_gaps(yt[b], pred[b], g[b]) for b in boot])
                for k, name in enumerate(("eod_gap", "eqodds_gap")):
                    rows.append({"seed": seed, "model": model, "attribute": attr,
                                 "metric": name, "value": est_gaps[k],
                                 "ci_low": np.nanquantile(reps[:, k], 0.025),
                                 "ci_high": np.nanquantile(reps[:, k], 0.975)})
            if model == "fairgrad":
                share = est.train_report_.conflict_share
                rows.append({"seed": seed, "model": model, "attribute": "all",
                             "metric": "conflict_share", "value": float(np.mean(share)),
                             "ci_low": float(np.min(share)), "ci_high": float(np.max(share))})
            say(f"seed {seed}: {model} trained in {seconds:.1f} s ({epochs} epochs)")
    info = {"fairness": {**asdict(cfg), "sensitive": list(cfg.sensitive),
                         "models": list(cfg.models)}, "cohort": cohort.meta,
            "seconds_per_epoch": {m: float(np.sum([s for s, _ in v]) /
                                           max(1, np.sum([e for _, e in v])))
                                  for m, v in timings.items()}}
    return pd.DataFrame(rows), info


def summarize_fairness(results: pd.DataFrame) -> pd.DataFrame:
    """Attribute x metric: each model's mean value [mean CI] and FairGrad's relative
    reduction of the gap (1 - fairgrad / generic)."""
    g = results.groupby(["attribute", "metric", "model"])[["value", "ci_low", "ci_high"]].mean()
    out = g.unstack("model")
    rows = []
    for (attr, metric), r in out.iterrows():
        row = {"attribute": attr, "metric": metric}
        for m in results["model"].unique():
            if ("value", m) in r and not np.isnan(r[("value", m)]):
                row[m] = (f"{r[('value', m)]:.3f} [{r[('ci_low', m)]:.3f}, "
                          f"{r[('ci_high', m)]:.3f}]")
        if metric.endswith("_gap") and ("value", "generic") in r and ("value", "fairgrad") in r:
            base = r[("value", "generic")]
            row["reduction"] = (f"{100 * (1 - r[('value', 'fairgrad')] / base):.0f} %"
                                if base > 0 else "–")
        rows.append(row)
    return pd.DataFrame(rows)


__all__ = ["FairnessConfig", "run_fairness", "summarize_fairness", "worst_gaps"]
