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

from ..._device import resolve_device
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
         "adversarial": (adversarial, {}),
         "adversarial_batch": (adversarial, {"critic": "batch"})}
POST = ("reject_option", "eq_odds")
METHODS = ("original", *INTRA, *POST)
DEFAULT_PRIVILEGED = {"sex": ("male", "Male", "M"), "gender": ("Male", "male", "M"),
                      "race": ("Caucasian",), "age": ("young",)}


def binarize(groups: pd.DataFrame, protected: str, privileged: str | None,
             cohort: str) -> tuple[np.ndarray, str]:
    """0/1 protected attribute (1 = privileged) from a group column."""
    if protected not in groups.columns:
        raise ConfigError(f"protected attribute {protected!r} is not a group attribute of "
                          f"{cohort}; choose one of {list(groups.columns)}.")
    col = groups[protected].astype(str)
    values = sorted(col.unique())
    priv = privileged
    if priv is None:
        priv = next((v for v in DEFAULT_PRIVILEGED.get(protected, ()) if v in values),
                    None)
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
    n_seeds: int = 1
    device: str = "cpu"

    def __post_init__(self) -> None:
        resolve_device(self.device)
        check_choice(self.metric, name="metric", choices=tuple(BIAS_METRICS))
        check_choice(self.objective, name="objective", choices=("constrained", "indicator"))
        for m in self.methods:
            if m not in METHODS:
                raise ConfigError(f"unknown method {m!r}; choose from {', '.join(METHODS)}.")
        self.methods = ("original", *(m for m in self.methods if m != "original"))
        self.plan_spec().validate()

    def plan_spec(self) -> PlanSpec:
        return PlanSpec(outer_splits=self.outer_splits, test_size=0.2, guard=0.2,
                        n_seeds=self.n_seeds,
                        n_folds=1, random_state=self.random_state)

    def model_specs(self) -> list[ModelSpec]:
        return [ModelSpec("methods")]

    def members_per_task(self) -> int:
        return 1                     # one task per (outer split, network): spreads evenly

    def prepare(self, cohort: Cohort) -> StudyData:
        data = super().prepare(cohort)
        a, priv = binarize(cohort.groups, self.protected, self.privileged, cohort.name)
        data.extra.update(protected=a, privileged=priv)
        data.y = data.y.astype(np.int64)
        return data

    def network(self, data: StudyData, plan: Plan, outer: int, run: dict):
        """The trained network of one run and the inputs of its guard and test rows."""
        X, y = data.X.to_numpy(np.float32), data.y
        model = GenericClassifier(hidden_layers=self.hidden_layers,
                                  hidden_units=self.hidden_units, max_epochs=self.max_epochs,
                                  patience=self.patience)
        model.fit_runs(X, y, train_indices=[run["train"]], val_indices=[run["early_stop"]],
                       seeds=[run["model_seed"]])
        return as_module(model), X[plan.rows(outer, "guard")], X[plan.rows(outer, "test")]

    def method_options(self, method: str) -> dict:
        """Keyword arguments of an intra-processing method beyond the selection ones."""
        return {}

    def fit_predict(self, spec: ModelSpec, data: StudyData, plan: Plan, outer: int,
                    runs: list[dict], save_to: str | None) -> TaskOutput:
        y, a = data.y, data.extra["protected"]
        val, test = plan.rows(outer, "guard"), plan.rows(outer, "test")
        preds: dict[str, list] = {m: [] for m in self.methods}
        info: dict[str, list] = {f"{m}/{k}": [] for m in self.methods
                                 for k in ("seconds", "constraint_met", "note")}
        for run in runs:
            net, X_val, X_test = self.network(data, plan, outer, run)
            ev = Evaluator(X_val, y[val], a[val], self.metric, device=self.device)
            net = net.to(ev.device)
            p_val, p_test = ev.proba(net), ev.proba(net, X_test)
            for method in self.methods:
                t0 = time.perf_counter()
                note, met = "", float("nan")    # no selection constraint: original, eq_odds
                if method == "original":
                    pred = (p_test >= ev.evaluate(net).threshold).astype(int)
                elif method in INTRA:
                    fn, kw = INTRA[method]
                    res = fn(net, X_val, y[val], a[val], metric=self.metric,
                             objective=self.objective, rho=self.rho, eps=self.eps,
                             device=self.device, **kw, **self.method_options(method))
                    pred = res.predict(X_test, a[test])
                    note, met = res.note, float(res.constraint_met)
                elif method == "reject_option":
                    roc = RejectOption(metric=self.metric, metric_lb=-self.eps,
                                       metric_ub=self.eps).fit(y[val], p_val, a[val])
                    pred, met = roc.predict(p_test, a[test]), float(roc.constraint_met_)
                else:                               # eq_odds on the network's scores
                    opt = equalized_odds_postprocessing(
                        lambda Z: np.asarray(Z)[:, 0], p_val[:, None], y[val], a[val],
                        random_state=run["model_seed"])
                    pred = opt.predict(p_test[:, None], sensitive_features=a[test],
                                       random_state=run["model_seed"])
                preds[method].append(np.asarray(pred, dtype=np.int64))
                info[f"{method}/seconds"].append(time.perf_counter() - t0)
                info[f"{method}/constraint_met"].append(met)
                info[f"{method}/note"].append(note)
        arrays = {m: np.stack(v) for m, v in preds.items()}
        return TaskOutput(arrays, info)

    def evaluate(self, data: StudyData, plan: Plan,
                 outputs: dict[tuple[str, int], TaskOutput]) -> pd.DataFrame:
        rows = []
        a = data.extra["protected"]
        for (_, outer), out in outputs.items():
            test = plan.rows(outer, "test")
            for method in self.methods:
                met = out.info[f"{method}/constraint_met"]
                for r, pred in enumerate(out.arrays[method]):
                    ba = balanced_accuracy(data.y[test], pred)
                    bias = BIAS_METRICS[self.metric](data.y[test], pred, a[test])
                    for metric, value in (("balanced_accuracy", ba), ("bias", bias),
                                          ("abs_bias", abs(bias)),
                                          ("objective", ba * (abs(bias) < self.eps)),
                                          ("constraint_met", met[r])):
                        rows.append({"model": method, "outer_split": outer, "seed": r + 1,
                                     "metric": metric, "subgroup": self.protected,
                                     "value": value, "n": len(test)})
        return tidy(rows, self.name)

    def timings(self, outputs: dict[tuple[str, int], TaskOutput]) -> dict[str, float]:
        out = super().timings(outputs)
        for m in self.methods:
            secs = [s for o in outputs.values() for s in o.info.get(f"{m}/seconds", [])]
            out[f"{m} (s per network)"] = float(np.mean(secs)) if secs else float("nan")
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
            "constraint met on validation (share of networks)": cell(m, "constraint_met", ".0%",
                                                                  False)}
            for m in self.methods])
        nets = f" x {self.n_seeds} seeded networks" if self.n_seeds > 1 else ""
        return (f"## Debiasing on {cohort_name}: protected {self.protected}, {self.metric}, "
                f"{self.outer_splits} outer split(s){nets}; test rows, mean ± sd over outer "
                "splits (of the mean over a split's networks)\n\n" + markdown_table(table) + "\n\nEvery column but the last is "
                "measured on the test rows; the last says how often the selection constraint "
                "(balanced accuracy >= rho, or |bias| < eps) held on the validation rows the "
                "method selected on, which does not promise the same on test rows.\n")
