"""The mixed-effects study (seed 003, DESIGN §5): generic vs MEDL vs fair MEDL on data
grouped in clusters (sites, admission sources), classification or regression.

Per outer split the plan holds out whole clusters (``unseen_share`` of the rows, each
of at least 50 rows, never the largest) as the **unseen** test rows; the other rows
give test (20 %), guard (20 %: the decision threshold maximizing balanced accuracy) and
the training part (early stopping on 20 % of it).  Seen-cluster rows are predicted with
mixed effects, unseen ones with fixed effects only.  Fairness on seen-cluster test rows:
sd across each attribute's groups of TPR and FPR (regression: of the group MSE), and
fair-MEDL's % improvement over MEDL beside the best the paper reports.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import ClassVar, Sequence

import numpy as np
import pandas as pd

from ..._validation import check_choice, check_sensitive_columns
from ...datasets import Cohort
from ...errors import ColumnNotFoundError, ConfigError
from ...fairness import best_threshold
from ...models import MixedEffectsClassifier, MixedEffectsRegressor
from ...models.mixed_effects import SmallClusterWarning
from ...training import TrainConfig
from ..plan import Plan, PlanSpec
from ..store import TaskOutput
from ..study import ModelSpec, Study, StudyData, tidy
from ..summary import split_summary
from ._common import classification_rows, overall, render_wide

MEDL_MODELS = ("generic", "medl", "fair-medl")
#: Largest improvements reported by the fair-MEDL paper (sd of TPR/FPR, per attribute).
PAPER_IMPROVEMENT = {"age": 82.0, "race": 43.0, "sex": 86.0, "gender": 86.0}


def cluster_column(X: pd.DataFrame, name: str, excluded: Sequence[str] = ()
                   ) -> tuple[np.ndarray, pd.DataFrame]:
    """Cluster labels from column ``name`` of X (or from its one-hot columns ``name_*``);
    returns the labels and X without those columns (no model sees the cluster id).
    ``excluded``: the columns left out of X as ids, named in the error."""
    if name in X.columns:
        return X[name].astype(str).to_numpy(), X.drop(columns=[name])
    onehot = [c for c in X.columns if str(c).startswith(f"{name}_")]
    if not onehot:
        if name in excluded:
            raise ConfigError(f"clusters {name!r} was left out when the file was read (a "
                              "different value on every row, or every cell empty); a cluster "
                              "needs several rows: give a column that groups rows (a site, a "
                              "ward, an admission source).")
        stems = sorted({str(c).rsplit("_", 1)[0] for c in X.columns if "_" in str(c)})
        cols = [str(c) for c in X.columns if "_" not in str(c)]
        raise ColumnNotFoundError(f"clusters {name!r} is neither a column nor a one-hot "
                                  f"prefix of the data; columns: {', '.join(cols[:12]) or '-'}"
                                  f"; one-hot prefixes: {', '.join(stems[:12]) or '-'}.")
    block = X[onehot].to_numpy()
    if not np.allclose(block.sum(1), 1):
        raise ConfigError(f"the one-hot columns {name}_* do not hold exactly one 1 per row.")
    labels = np.array([c[len(name) + 1:] for c in onehot])[block.argmax(1)]
    return labels, X.drop(columns=onehot)


@dataclass
class MixedStudy(Study):
    name: ClassVar[str] = "mixed"
    title: ClassVar[str] = "generic vs MEDL vs fair MEDL"

    clusters: str = ""
    sensitive: tuple[str, ...] = ()
    models: tuple[str, ...] = MEDL_MODELS
    task: str = "classification"
    outer_splits: int = 3
    random_state: int = 0
    unseen_share: float = 0.1
    hidden_layers: int = 3
    hidden_units: int = 64
    batch_size: int = TrainConfig.batch_size
    max_epochs: int = TrainConfig.max_epochs
    patience: int = TrainConfig.patience
    adversary_weight: float = 0.1
    kl_weight: float = 1e-3
    fairness_weight: float = 1.0

    def __post_init__(self) -> None:
        self.models, self.sensitive = tuple(self.models), tuple(self.sensitive)
        check_choice(self.task, name="task", choices=("classification", "regression"))
        for m in self.models:
            if m not in MEDL_MODELS:
                raise ConfigError(f"unknown model {m!r} for the mixed-effects study; choose "
                                  f"from {', '.join(MEDL_MODELS)}.")
        if not self.clusters:
            raise ConfigError("the mixed-effects study needs the cluster column (e.g. "
                              "admission_source_id).")
        self.plan_spec().validate()

    @property
    def regression(self) -> bool:
        return self.task == "regression"

    def plan_spec(self) -> PlanSpec:
        return PlanSpec(outer_splits=self.outer_splits, test_size=0.2, guard=0.2, n_seeds=1,
                        n_folds=1, random_state=self.random_state,
                        unseen_share=self.unseen_share)

    def model_specs(self) -> list[ModelSpec]:
        return [ModelSpec(m, cost=-i) for i, m in enumerate(self.models)]

    def prepare(self, cohort: Cohort) -> StudyData:
        data = super().prepare(cohort)
        names = check_sensitive_columns(cohort.groups, self.sensitive, cohort.name)
        data.attributes = data.attributes[list(names)]
        labels, data.X = cluster_column(cohort.X, self.clusters,
                                        cohort.meta.get("excluded_auto") or ())
        if len(labels) > 1 and len(np.unique(labels)) == len(labels):
            raise ConfigError(f"clusters {self.clusters!r} has a different value on every "
                              f"row ({len(labels)} rows, {len(labels)} clusters); a cluster "
                              "needs several rows: give a column that groups rows (a site, "
                              "a ward, an admission source).")
        data.extra["clusters"] = labels
        if self.regression:
            data.y = data.y.astype(np.float64)
        elif len(np.unique(data.y)) != 2:
            raise ConfigError(f"task classification needs a binary target; {cohort.name}'s "
                              "has other values (use the regression task).")
        else:
            data.y = data.y.astype(np.int64)
        return data

    def plan_inputs(self, data: StudyData) -> dict:
        return {"groups": data.groups, "y": None if self.regression else data.y,
                "ids": data.ids, "clusters": data.extra["clusters"]}

    def fit_predict(self, spec: ModelSpec, data: StudyData, plan: Plan, outer: int,
                    runs: list[dict], save_to: str | None) -> TaskOutput:
        (run,) = runs
        cls = MixedEffectsRegressor if self.regression else MixedEffectsClassifier
        kw = dict(hidden_layers=self.hidden_layers, hidden_units=self.hidden_units,
                  batch_size=self.batch_size, max_epochs=self.max_epochs,
                  patience=self.patience, kl_weight=self.kl_weight)
        if spec.name == "generic":
            est = cls(adversary_weight=0.0, random_effects=False, **kw)
        else:
            est = cls(adversary_weight=self.adversary_weight, fairness_weight=(
                self.fairness_weight if spec.name == "fair-medl" else 0.0), **kw)
        rows = np.concatenate([run["train"], run["early_stop"]])
        X, cl = data.X.to_numpy(np.float32), data.extra["clusters"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SmallClusterWarning)
            est.fit_runs(X[rows], data.y[rows], clusters=cl[rows],
                         sensitive_features=(data.attributes.iloc[rows]
                                             if spec.name == "fair-medl" else None),
                         train_indices=[np.arange(len(run["train"]))],
                         val_indices=[np.arange(len(run["train"]), len(rows))],
                         seeds=[run["model_seed"]])
        pred = est.predict(X, cl) if self.regression else est.predict_proba(X, cl)[:, 1]
        return TaskOutput({"pred": pred[None, :]},
                          {"epochs": [int(est.train_report_.epochs_run[0])]})

    def evaluate(self, data: StudyData, plan: Plan,
                 outputs: dict[tuple[str, int], TaskOutput]) -> pd.DataFrame:
        rows: list[dict] = []
        for (model, outer), out in outputs.items():
            p = out.arrays["pred"][0]
            test, unseen = plan.rows(outer, "test"), plan.rows(outer, "unseen")
            base = {"model": model, "outer_split": outer}
            rows.append({**base, "metric": "epochs", "role": "train",
                         "value": out.info["epochs"][0]})
            if self.regression:
                for role, r in (("test", test), ("unseen", unseen)):
                    if len(r):
                        rows.append({**base, "metric": "mse", "role": role, "n": len(r),
                                     "value": float(((p[r] - data.y[r]) ** 2).mean())})
                err = (p[test] - data.y[test]) ** 2
                for attr in data.attributes.columns:
                    g = data.attributes[attr].to_numpy()[test]
                    rows.append({**base, "subgroup": attr, "metric": "sd_mse", "n": len(test),
                                 "value": float(np.std([err[g == v].mean()
                                                        for v in np.unique(g)]))})
                continue
            guard = plan.rows(outer, "guard")
            threshold, _ = best_threshold(data.y[guard], p[guard])
            seen = classification_rows(data.y[test], p[test], threshold,
                                       data.attributes.iloc[test], gaps="sd")
            rows += [{**base, **r} for r in seen if r["metric"] != "accuracy"]
            if len(unseen) and len(np.unique(data.y[unseen])) > 1:
                un = overall(data.y[unseen], p[unseen], (p[unseen] >= threshold).astype(int))
                rows.append({**base, "metric": "auroc", "role": "unseen", "n": len(unseen),
                             "value": un["auroc"]})
        results = tidy(rows, self.name)
        results["metric"] = np.where(results["role"].isin(["test", "unseen"]) &
                                     results["metric"].isin(["auroc", "mse"]),
                                     results["metric"] + "_" + results["role"].map(
                                         {"test": "seen", "unseen": "unseen"}),
                                     results["metric"])
        return results

    def summarize(self, results: pd.DataFrame, context=None) -> pd.DataFrame:
        return split_summary(results, test_train_ratio=0.2 / 0.6)

    def render(self, summary: pd.DataFrame, results: pd.DataFrame, cohort_name: str,
               plan: Plan, external: pd.DataFrame | None = None) -> str:
        units = {k: f"{v:.0f} %" for k, v in PAPER_IMPROVEMENT.items()}
        both = {"medl", "fair-medl"} <= set(self.models)
        return (f"## Generic vs MEDL vs fair MEDL on {cohort_name} ({self.task}, clusters "
                f"{self.clusters}, {self.outer_splits} outer split(s)); mean ± sd over outer "
                "splits; seen = test rows of training clusters, unseen = held-out clusters"
                + ("; improvement = fair-MEDL against MEDL (paper = best reported by Nguyen "
                   "et al.)" if both else "") + "\n\n" + render_wide(
                    summary, list(self.models), ci=False,
                    relative=("medl", "fair-medl", "improvement") if both else None,
                    extra={"paper": units} if both else None) + "\n")
