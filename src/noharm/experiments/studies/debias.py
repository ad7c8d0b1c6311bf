"""The debias study (seed 004; Marcinkevics, Ozkan & Vogt): per outer split a standard
network is trained on the training part, every method is fitted on the guard rows
(which the network neither trained nor early-stopped on), and each result is measured
on the test rows: balanced accuracy, bias, the indicator objective BA * 1[|bias| < eps],
whether the method's selection constraint was met (its seconds go to the timings)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import torch

from ..._validation import check_choice
from ...datasets import Cohort
from ...debias import (RejectOption, adaptive_pruning, adversarial, as_module, bias_gradient,
                       cluster_pruning,
                       engineered_gradient, equalized_odds_postprocessing, pruning,
                       random_perturbation)
from ...debias._common import BIAS_METRICS, Evaluator
from ...errors import ConfigError
from ...fairness import balanced_accuracy
from ...models import GenericClassifier
from ...report.tables import markdown_table
from ...training import TrainConfig
from ..plan import Plan, PlanSpec
from ..store import TaskOutput
from ..study import ModelSpec, Study, StudyData, tidy
from ..summary import split_summary

INTRA = {"random_perturbation": (random_perturbation, {}),
         "pruning": (pruning, {}),
         "pruning_dynamic": (pruning, {"dynamic": True}),
         "adaptive_pruning": (adaptive_pruning, {}),
         "cluster_pruning": (cluster_pruning, {}),
         "bias_gradient": (bias_gradient, {}),
         "engineered_gradient": (engineered_gradient, {}),
         "engineered_gradient_fixed": (engineered_gradient, {"dynamic": False}),
         "adversarial": (adversarial, {})}
POST = ("reject_option", "eq_odds")
METHODS = ("original", *INTRA, *POST)
DEFAULT_PRIVILEGED = {"sex": "male", "gender": "Male", "race": "Caucasian", "age": "young"}


def binarize(groups: pd.DataFrame, protected: str, privileged: str | None,
             cohort: str) -> tuple[np.ndarray, str]:
    """0/1 protected attribute (1 = privileged) from a group column."""
    if protected not in groups.columns:
        raise ConfigError(f"protected attribute {protected!r} is not a group attribute of "
                          f"{cohort}; choose one of {list(groups.columns)}.")
    col = groups[protected].astype(str)
    values = sorted(col.unique())
    priv = privileged if privileged is not None else DEFAULT_PRIVILEGED.get(protected)
    if priv is None:
        raise ConfigError(f"protected attribute {protected!r} has values {values[:8]}; say "
                          "which is privileged (the others become unprivileged).")
    if priv not in values:
        raise ConfigError(f"privileged value {priv!r} does not occur in {protected!r} "
                          f"(values: {values[:8]}).")
    return (col == priv).to_numpy().astype(int), priv


@dataclass
class DebiasStudy(Study):
    name: ClassVar[str] = "debias"
    title: ClassVar[str] = "debiasing methods"

    protected: str = "sex"
    privileged: str | None = None
    metric: str = "spd"
    methods: tuple[str, ...] = METHODS
    outer_splits: int = 3
    random_state: int = 0
    objective: str = "constrained"
    rho: float | None = None
    eps: float = 0.05
    hidden_layers: int = 6
    hidden_units: int = 64
    max_epochs: int = TrainConfig.max_epochs
    patience: int = TrainConfig.patience

    def __post_init__(self) -> None:
        check_choice(self.metric, name="metric", choices=tuple(BIAS_METRICS))
        check_choice(self.objective, name="objective", choices=("constrained", "indicator"))
        for m in self.methods:
            if m not in METHODS:
                raise ConfigError(f"unknown method {m!r}; choose from {', '.join(METHODS)}.")
        self.methods = ("original", *(m for m in self.methods if m != "original"))
        self.plan_spec().validate()

    def plan_spec(self) -> PlanSpec:
        return PlanSpec(outer_splits=self.outer_splits, test_size=0.2, guard=0.2, n_seeds=1,
                        n_folds=1, random_state=self.random_state)

    def model_specs(self) -> list[ModelSpec]:
        return [ModelSpec("methods", batched=False)]

    def prepare(self, cohort: Cohort) -> StudyData:
        data = super().prepare(cohort)
        a, priv = binarize(cohort.groups, self.protected, self.privileged, cohort.name)
        data.extra.update(protected=a, privileged=priv)
        data.y = data.y.astype(np.int64)
        return data

    def fit_predict(self, spec: ModelSpec, data: StudyData, plan: Plan, outer: int,
                    runs: list[dict], save_to: str | None) -> TaskOutput:
        (run,) = runs
        X, y, a = data.X.to_numpy(np.float32), data.y, data.extra["protected"]
        val, test = plan.rows(outer, "guard"), plan.rows(outer, "test")
        model = GenericClassifier(hidden_layers=self.hidden_layers,
                                  hidden_units=self.hidden_units, max_epochs=self.max_epochs,
                                  patience=self.patience)
        model.fit_runs(X, y, train_indices=[run["train"]], val_indices=[run["early_stop"]],
                       seeds=[run["model_seed"]])
        ev = Evaluator(X[val], y[val], a[val], self.metric)
        net = as_module(model)
        p_val, p_test = ev.proba(net), ev.proba(net, torch.from_numpy(X[test]))
        arrays, info = {}, {}
        for method in self.methods:
            t0 = time.perf_counter()
            note, met = "", float("nan")    # no selection constraint: original / eq_odds
            if method == "original":
                pred = (p_test >= ev.evaluate(net).threshold).astype(int)
            elif method in INTRA:
                fn, kw = INTRA[method]
                res = fn(model, X[val], y[val], a[val], metric=self.metric,
                         objective=self.objective, rho=self.rho, eps=self.eps, **kw)
                pred = res.predict(X[test], a[test])
                note, met = res.note, float(res.constraint_met)
            elif method == "reject_option":
                roc = RejectOption(metric=self.metric, metric_lb=-self.eps,
                                   metric_ub=self.eps).fit(y[val], p_val, a[val])
                pred, met = roc.predict(p_test, a[test]), float(roc.constraint_met_)
            else:
                opt = equalized_odds_postprocessing(
                    lambda Z: ev.proba(net, torch.from_numpy(np.asarray(Z, np.float32))),
                    X[val], y[val], a[val], random_state=run["model_seed"])
                pred = opt.predict(X[test], sensitive_features=a[test],
                                   random_state=run["model_seed"])
            arrays[method] = np.asarray(pred, dtype=np.int64)[None, :]
            info[method] = {"seconds": time.perf_counter() - t0, "constraint_met": met,
                            "note": note}
        return TaskOutput(arrays, info)

    def evaluate(self, data: StudyData, plan: Plan,
                 outputs: dict[tuple[str, int], TaskOutput]) -> pd.DataFrame:
        rows = []
        a = data.extra["protected"]
        for (_, outer), out in outputs.items():
            test = plan.rows(outer, "test")
            for method in self.methods:
                pred = out.arrays[method][0]
                ba = balanced_accuracy(data.y[test], pred)
                bias = BIAS_METRICS[self.metric](data.y[test], pred, a[test])
                facts = out.info[method]
                for metric, value in (("balanced_accuracy", ba), ("bias", bias),
                                      ("abs_bias", abs(bias)),
                                      ("objective", ba * (abs(bias) < self.eps)),
                                      ("constraint_met", facts["constraint_met"])):
                    rows.append({"model": method, "outer_split": outer, "metric": metric,
                                 "subgroup": self.protected, "value": value, "n": len(test)})
        return tidy(rows, self.name)

    def timings(self, outputs: dict[tuple[str, int], TaskOutput]) -> dict[str, float]:
        out = super().timings(outputs)
        for m in self.methods:
            secs = [o.info[m]["seconds"] for o in outputs.values() if m in o.info]
            out[f"{m} (s per split)"] = float(np.mean(secs)) if secs else float("nan")
        return out

    def summarize(self, results: pd.DataFrame, context=None) -> pd.DataFrame:
        return split_summary(results, test_train_ratio=0.2 / 0.6)

    def render(self, summary: pd.DataFrame, results: pd.DataFrame, cohort_name: str,
               plan: Plan, external: pd.DataFrame | None = None) -> str:
        s = summary.set_index(["model", "metric"])

        def cell(method: str, metric: str, fmt: str, sd: bool = True) -> str:
            if (method, metric) not in s.index or np.isnan(s.loc[(method, metric), "mean"]):
                return "–"
            r = s.loc[(method, metric)]
            txt = format(r["mean"], fmt)
            return txt + (f" ± {0 if np.isnan(r['sd']) else r['sd']:.3f}" if sd else "")
        table = pd.DataFrame([{
            "method": m, "balanced accuracy": cell(m, "balanced_accuracy", ".3f"),
            self.metric: cell(m, "bias", "+.3f"), f"abs({self.metric})": cell(m, "abs_bias",
                                                                          ".3f", False),
            "objective": cell(m, "objective", ".3f", False),
            "constraint met on validation (share of splits)": cell(m, "constraint_met", ".0%",
                                                                  False)}
            for m in self.methods])
        return (f"## Debiasing on {cohort_name}: protected {self.protected}, {self.metric}, "
                f"{self.outer_splits} outer split(s); test rows, mean ± sd over outer "
                "splits\n\n" + markdown_table(table) + "\n\nEvery column but the last is "
                "measured on the test rows; the last says how often the selection constraint "
                "(balanced accuracy >= rho, or |bias| < eps) held on the validation rows the "
                "method selected on, which does not promise the same on test rows.\n")
