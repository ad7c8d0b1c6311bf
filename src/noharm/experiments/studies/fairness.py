"""The fairness study (seed 002, DESIGN §5): generic vs FairGrad over several sensitive
attributes.

Per outer split: test rows (20 %), guard rows (20 %: the decision threshold that
maximizes balanced accuracy there) and the training part (early stopping on 20 % of
it; FairGrad's automatic weight is chosen there too, reported as ``fairness_weight``).
Per attribute, on test rows: the worst pairwise equal-opportunity gap (max - min
TPR over the attribute's groups) and equalized-odds gap (the larger of the worst TPR and
FPR gaps); overall accuracy, balanced accuracy and AUROC; FairGrad's share of
conflicting steps.  Seconds per epoch go to the timings (config.json), not the
results.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from ..._validation import check_choice, check_sensitive_columns
from ...datasets import Cohort
from ...errors import ConfigError
from ...fairness import best_threshold
from ...models import FairGradClassifier, GenericClassifier
from ...models.fairgrad import check_auroc_tolerance
from ...training import TrainConfig
from ..plan import Plan, PlanSpec
from ..store import TaskOutput
from ..study import ModelSpec, Study, StudyData, tidy
from ..summary import split_summary
from ._common import classification_rows, render_wide

FAIR_MODELS = ("generic", "fairgrad")


@dataclass
class FairnessStudy(Study):
    name: ClassVar[str] = "fairness"
    title: ClassVar[str] = "generic vs FairGrad"

    sensitive: tuple[str, ...] = ()
    models: tuple[str, ...] = FAIR_MODELS
    outer_splits: int = 3
    random_state: int = 0
    fairness_loss: str = "eqodds"
    projection: str = "conflict"
    fairness_weights: tuple[float, ...] | str | None = "auto"
    auroc_tolerance: float = 0.01
    balance: str = "none"
    hidden_layers: int = 6
    hidden_units: int = 64
    max_epochs: int = TrainConfig.max_epochs
    patience: int = TrainConfig.patience

    def __post_init__(self) -> None:
        self.models, self.sensitive = tuple(self.models), tuple(self.sensitive)
        for m in self.models:
            if m not in FAIR_MODELS:
                raise ConfigError(f"unknown model {m!r} for the fairness study; choose from "
                                  f"{', '.join(FAIR_MODELS)}.")
        check_choice(self.fairness_loss, name="fairness_loss", choices=("eqodds", "eod", "spd"))
        check_choice(self.projection, name="projection", choices=("conflict", "always"))
        check_choice(self.balance, name="balance", choices=("clip", "none"))
        check_auroc_tolerance(self.auroc_tolerance)
        if isinstance(self.fairness_weights, str):
            check_choice(self.fairness_weights, name="fairness_weights", choices=("auto",))
        elif self.fairness_weights is not None:
            self.fairness_weights = tuple(float(w) for w in self.fairness_weights)
        self.plan_spec().validate()

    def plan_spec(self) -> PlanSpec:
        return PlanSpec(outer_splits=self.outer_splits, test_size=0.2, guard=0.2, n_seeds=1,
                        n_folds=1, random_state=self.random_state)

    def model_specs(self) -> list[ModelSpec]:
        return [ModelSpec(m, cost=-i) for i, m in enumerate(self.models)]

    def prepare(self, cohort: Cohort) -> StudyData:
        data = super().prepare(cohort)
        names = check_sensitive_columns(cohort.groups, self.sensitive, cohort.name)
        if isinstance(self.fairness_weights, tuple) and len(self.fairness_weights) != len(names):
            raise ConfigError(f"fairness_weights has {len(self.fairness_weights)} values for "
                              f"{len(names)} sensitive attributes {list(names)}.")
        data.attributes = data.attributes[list(names)]
        if len(np.unique(data.y)) != 2:
            raise ConfigError(f"the fairness study needs a binary target; {cohort.name}'s "
                              "has other values.")
        data.y = data.y.astype(np.int64)
        return data

    def fit_predict(self, spec: ModelSpec, data: StudyData, plan: Plan, outer: int,
                    runs: list[dict], save_to: str | None) -> TaskOutput:
        (run,) = runs
        kw = dict(hidden_layers=self.hidden_layers, hidden_units=self.hidden_units,
                  max_epochs=self.max_epochs, patience=self.patience)
        X = data.X.to_numpy(np.float32)
        fit = dict(train_indices=[run["train"]], val_indices=[run["early_stop"]],
                   seeds=[run["model_seed"]])
        if spec.name == "generic":
            est = GenericClassifier(**kw).fit_runs(X, data.y, **fit)
        else:
            weights = (list(self.fairness_weights) if isinstance(self.fairness_weights, tuple)
                       else self.fairness_weights)
            est = FairGradClassifier(fairness_loss=self.fairness_loss,
                                     projection=self.projection, fairness_weights=weights,
                                     balance=self.balance, auroc_tolerance=self.auroc_tolerance,
                                     **kw).fit_runs(X, data.y,
                                                    sensitive_features=data.attributes, **fit)
        info = {"epochs": [int(est.train_report_.epochs_run[0])]}
        if spec.name == "fairgrad":
            info["conflict_share"] = [float(np.mean(est.train_report_.conflict_share))]
            info["weight"] = [float(np.max(est.weights_))]
        if save_to is not None:
            est.save(save_to)
        return TaskOutput({"proba": est.predict_proba_runs(X)}, info)

    def evaluate(self, data: StudyData, plan: Plan,
                 outputs: dict[tuple[str, int], TaskOutput]) -> pd.DataFrame:
        rows = []
        for (model, outer), out in outputs.items():
            p = out.arrays["proba"][0]
            guard, test = plan.rows(outer, "guard"), plan.rows(outer, "test")
            threshold, _ = best_threshold(data.y[guard], p[guard])
            base = {"model": model, "outer_split": outer}
            rows += [{**base, **r} for r in classification_rows(
                data.y[test], p[test], threshold, data.attributes.iloc[test], gaps="worst")]
            if "conflict_share" in out.info:
                rows.append({**base, "metric": "conflict_share", "role": "train",
                             "value": out.info["conflict_share"][0]})
            if "weight" in out.info:
                rows.append({**base, "metric": "fairness_weight", "role": "early_stop",
                             "value": out.info["weight"][0]})
        return tidy(rows, self.name)

    def timings(self, outputs: dict[tuple[str, int], TaskOutput]) -> dict[str, float]:
        out = super().timings(outputs)
        for m in self.models:
            parts = [o for (model, _), o in outputs.items() if model == m and o.info]
            epochs = sum(o.info["epochs"][0] for o in parts)
            if epochs:
                out[f"{m} (s per epoch)"] = sum(o.seconds for o in parts) / epochs
        return out

    def summarize(self, results: pd.DataFrame, context=None) -> pd.DataFrame:
        return split_summary(results, test_train_ratio=0.2 / 0.6)

    def _weights_text(self) -> str:
        if self.fairness_weights == "auto":
            return (f"auto: the largest of 0-1 within {self.auroc_tolerance} validation AUROC "
                    "of weight 0")
        return ",".join(f"{w:g}" for w in self.fairness_weights or (1.0,))

    def render(self, summary: pd.DataFrame, results: pd.DataFrame, cohort_name: str,
               plan: Plan, external: pd.DataFrame | None = None) -> str:
        head = (f"## Generic vs FairGrad on {cohort_name} ({self.fairness_loss}, "
                f"{self.projection} projection, balance {self.balance}, weights "
                f"{self._weights_text()}, {self.outer_splits} "
                "outer split(s)); mean "
                "[95 % corrected resampled t-interval over outer splits]; gaps are worst "
                "pairwise differences over each attribute's groups\n\n")
        return head + render_wide(summary, list(self.models), ci=True,
                                  relative=("generic", "fairgrad", "reduction")) + "\n"
