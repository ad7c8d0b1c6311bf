"""The debiasing experiment: train a standard model per seed, debias it with every method
on validation data, evaluate on test data (seed: Marcinkevics, Ozkan & Vogt)."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from .._validation import check_choice, check_positive_int
from ..datasets import Cohort
from ..debias import (RejectOption, adaptive_pruning, adversarial, as_module, bias_gradient,
                      engineered_gradient, equalized_odds_postprocessing, pruning,
                      random_perturbation)
from ..debias._common import BIAS_METRICS, Evaluator
from ..errors import ConfigError
from ..fairness import balanced_accuracy
from ..models import GenericClassifier
from ..training import TrainConfig

INTRA = {"random_perturbation": (random_perturbation, {}),
         "pruning": (pruning, {}),
         "pruning_dynamic": (pruning, {"dynamic": True}),
         "adaptive_pruning": (adaptive_pruning, {}),
         "bias_gradient": (bias_gradient, {}),
         "engineered_gradient": (engineered_gradient, {}),
         "adversarial": (adversarial, {})}
POST = ("reject_option", "eq_odds")
METHODS = ("original", *INTRA, *POST)
DEFAULT_PRIVILEGED = {"sex": "male", "gender": "Male", "race": "Caucasian", "age": "young"}


def binarize(cohort: Cohort, protected: str, privileged: str | None) -> tuple[np.ndarray, str]:
    """0/1 protected attribute (1 = privileged) from a group column of the cohort."""
    if protected not in cohort.groups.columns:
        raise ConfigError(f"--protected {protected!r} is not a group attribute of "
                          f"{cohort.name}; choose one of {list(cohort.groups.columns)}.")
    col = cohort.groups[protected].astype(str)
    values = sorted(col.unique())
    priv = privileged if privileged is not None else DEFAULT_PRIVILEGED.get(protected)
    if priv is None:
        raise ConfigError(f"--protected {protected!r} has values {values[:8]}; say which is "
                          "privileged with --privileged VALUE (the others become unprivileged).")
    if priv not in values:
        raise ConfigError(f"privileged value {priv!r} does not occur in {protected!r} "
                          f"(values: {values[:8]}).")
    return (col == priv).to_numpy().astype(int), priv


@dataclass
class DebiasConfig:
    protected: str = "sex"
    privileged: str | None = None
    metric: str = "spd"
    methods: tuple[str, ...] = METHODS
    n_seeds: int = 3
    objective: str = "constrained"
    rho: float | None = None
    eps: float = 0.05
    hidden_layers: int = 6
    hidden_units: int = 64
    max_epochs: int = TrainConfig.max_epochs
    patience: int = TrainConfig.patience

    def validate(self) -> "DebiasConfig":
        check_choice(self.metric, name="metric", choices=tuple(BIAS_METRICS))
        check_choice(self.objective, name="objective", choices=("constrained", "indicator"))
        check_positive_int(self.n_seeds, name="n_seeds")
        for m in self.methods:
            if m not in METHODS:
                raise ConfigError(f"unknown method {m!r}; choose from {', '.join(METHODS)}.")
        if "original" not in self.methods:
            self.methods = ("original", *self.methods)
        return self


@dataclass
class DebiasOutcome:
    results: pd.DataFrame
    config: dict
    notes: list[str] = field(default_factory=list)


def _splits(cohort: Cohort, a: np.ndarray, seed: int):
    y = cohort.y.to_numpy()
    strat = np.char.add(a.astype(str), y.astype(str))
    idx = np.arange(len(y))
    if cohort.split_by is None:
        rest, test = train_test_split(idx, test_size=0.2, random_state=seed, stratify=strat)
        train, val = train_test_split(rest, test_size=0.25, random_state=seed,
                                      stratify=strat[rest])
        return train, val, test
    ids = cohort.split_by.to_numpy()
    folds = list(StratifiedGroupKFold(5, shuffle=True, random_state=seed).split(idx, strat, ids))
    test, val = folds[0][1], folds[1][1]
    train = np.setdiff1d(idx, np.concatenate([test, val]))
    return train, val, test


def run_debias(cohort: Cohort, config: DebiasConfig | None = None,
               progress: Callable[[str], None] | None = None) -> DebiasOutcome:
    """Per seed: 60/20/20 split (by ``split_by`` ids when the cohort has them), a generic
    model trained on the 60 %, every method fitted on the validation 20 %, and test BA,
    bias and objective (BA * 1[|bias| < eps]) of each method's result."""
    cfg = (config or DebiasConfig()).validate()
    say = progress or (lambda s: None)
    a, priv = binarize(cohort, cfg.protected, cfg.privileged)
    X = cohort.X.to_numpy(np.float32)
    y = cohort.y.to_numpy().astype(int)
    rows, notes = [], []
    for seed in range(1, cfg.n_seeds + 1):
        train, val, test = _splits(cohort, a, seed)
        say(f"seed {seed}: training the standard model on {len(train)} rows")
        model = GenericClassifier(hidden_layers=cfg.hidden_layers,
                                  hidden_units=cfg.hidden_units, max_epochs=cfg.max_epochs,
                                  patience=cfg.patience, random_state=seed)
        model.fit(X[train], y[train])
        ev_val = Evaluator(X[val], y[val], a[val], cfg.metric)
        net = as_module(model)
        p_val, p_test = ev_val.proba(net), ev_val.proba(net, torch.from_numpy(X[test]))
        for method in cfg.methods:
            t0 = time.perf_counter()
            note, met = "", np.nan          # no selection constraint for original / eq_odds
            if method == "original":
                thr = ev_val.evaluate(net).threshold
                pred = (p_test >= thr).astype(int)
            elif method in INTRA:
                fn, kw = INTRA[method]
                res = fn(model, X[val], y[val], a[val], metric=cfg.metric,
                         objective=cfg.objective, rho=cfg.rho, eps=cfg.eps, **kw)
                pred = res.predict(X[test], a[test])
                note, met = res.note, res.constraint_met
            elif method == "reject_option":
                roc = RejectOption(metric=cfg.metric, metric_lb=-cfg.eps,
                                   metric_ub=cfg.eps).fit(y[val], p_val, a[val])
                pred = roc.predict(p_test, a[test])
                met = roc.constraint_met_
            else:
                opt = equalized_odds_postprocessing(
                    lambda Z, ev=ev_val, net=net: ev.proba(net, torch.from_numpy(
                        np.asarray(Z, np.float32))),
                    X[val], y[val], a[val], random_state=seed)
                pred = opt.predict(X[test], sensitive_features=a[test], random_state=seed)
            seconds = time.perf_counter() - t0
            ba = balanced_accuracy(y[test], pred)
            bias = BIAS_METRICS[cfg.metric](y[test], pred, a[test])
            rows.append({"seed": seed, "method": method, "balanced_accuracy": ba, "bias": bias,
                         "objective": ba * (abs(bias) < cfg.eps), "constraint_met": met,
                         "seconds": seconds, "note": note})
            say(f"  {method}: BA {ba:.3f} bias {bias:+.3f} ({seconds:.1f} s)")
    conf = asdict(cfg)
    conf["methods"] = list(cfg.methods)
    conf["privileged_value"] = priv
    return DebiasOutcome(pd.DataFrame(rows), {"debias": conf, "cohort": cohort.meta}, notes)


def summarize_debias(results: pd.DataFrame) -> pd.DataFrame:
    """Method x (BA mean ± sd, bias mean ± sd, objective, constraint met, seconds)."""
    order = {m: i for i, m in enumerate(METHODS)}
    g = results.groupby("method")
    out = pd.DataFrame({
        "balanced_accuracy": g["balanced_accuracy"].mean(),
        "balanced_accuracy_sd": g["balanced_accuracy"].std(ddof=1),
        "bias": g["bias"].mean(), "bias_sd": g["bias"].std(ddof=1),
        "abs_bias": g["bias"].apply(lambda b: b.abs().mean()),
        "objective": g["objective"].mean(), "constraint_met": g["constraint_met"].mean(),
        "seconds": g["seconds"].mean()}).reset_index()
    return out.sort_values("method", key=lambda s: s.map(order)).reset_index(drop=True)
