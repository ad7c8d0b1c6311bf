"""The personalization study (seed 000, DESIGN §3): generic vs decoupled vs conditional
bias vs logistic regression, per subgroup, over seeds x folds runs on each outer split.

Run (seed, fold) trains on the training folds, early-stops on its early-stopping fold
and is evaluated on the outer split's test rows.  With ``harm_guard`` the plan
cross-fits a guard fold per run, and every personalized model P gets a row
``harm-guard(P)``: per run and subgroup, P where that run's guard rows (which neither
model trained or early-stopped on) do not show it worse than generic (one-sided exact
McNemar), generic elsewhere.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..._validation import (check_choice, check_fraction, check_group_sizes,
                            check_positive_int)
from ...datasets import Cohort
from ...errors import ConfigError, GroupError
from ...models import ConditionalBiasClassifier, DecoupledClassifier, GenericClassifier
from ...training import TrainConfig
from ..metrics import group_metrics
from ..plan import Plan, PlanSpec
from ..store import TaskOutput
from ..study import ModelSpec, Study, StudyData, tidy
from ..summary import summarize

MODEL_NAMES = ("generic", "decoupled", "conditional-bias", "logreg")
_NETS = {"generic": GenericClassifier, "decoupled": DecoupledClassifier,
         "conditional-bias": ConditionalBiasClassifier}
_SPECS = {"conditional-bias": ModelSpec("conditional-bias", cost=0),
          "decoupled": ModelSpec("decoupled", cost=1, skip_on=(GroupError,)),
          "generic": ModelSpec("generic", cost=2),
          "logreg": ModelSpec("logreg", batched=False, cost=3)}


@dataclass
class PersonalizationStudy(Study):
    """Everything that defines a personalization study's results."""

    name: ClassVar[str] = "personalization"
    title: ClassVar[str] = "generic vs decoupled vs conditional bias"

    models: tuple[str, ...] = MODEL_NAMES
    n_seeds: int = 5
    n_folds: int = 5
    outer_splits: int = 1
    test_size: float = 0.2
    random_state: int = 0
    hidden_layers: int = 6
    hidden_units: int = 64
    dropout: float = 0.2
    lr: float = TrainConfig.lr
    batch_size: int = TrainConfig.batch_size
    max_epochs: int = TrainConfig.max_epochs
    patience: int = TrainConfig.patience
    attr_layers: int = 5
    n_bias: int = 1
    training: str = "two_stage"
    ensemble_size: int = 25
    harm_guard: bool = False
    guard_alpha: float = 0.05

    def __post_init__(self) -> None:
        self.models = tuple(self.models)
        if not self.models:
            raise ConfigError("no models selected; choose from " + ", ".join(MODEL_NAMES) + ".")
        for m in self.models:
            if m not in MODEL_NAMES:
                raise ConfigError(f"unknown model {m!r}; choose from {', '.join(MODEL_NAMES)}.")
        if len(set(self.models)) != len(self.models):
            raise ConfigError(f"models repeat: {list(self.models)}.")
        check_positive_int(self.ensemble_size, name="ensemble_size")
        check_choice(self.training, name="training", choices=("two_stage", "joint"))
        check_fraction(self.guard_alpha, name="guard_alpha", high=0.5)
        if not 1 <= self.n_bias <= min(self.hidden_layers, self.attr_layers):
            raise ConfigError(f"n_bias (bias layers) must be between 1 and min(hidden_layers, "
                              f"attr_layers) = {min(self.hidden_layers, self.attr_layers)}.")
        if self.harm_guard and ("generic" not in self.models or
                                not {"decoupled", "conditional-bias"} & set(self.models)):
            raise ConfigError("the harm guard needs the generic model and a personalized one "
                              "(decoupled or conditional-bias) among the models.")
        if self.harm_guard and self.n_folds < 3:
            raise ConfigError("the harm guard needs at least 3 folds (guard, early stopping "
                              f"and training folds); got {self.n_folds}.")
        self.plan_spec().validate()

    def plan_spec(self) -> PlanSpec:
        return PlanSpec(outer_splits=self.outer_splits, test_size=self.test_size,
                        guard="cross-fit" if self.harm_guard else "none",
                        n_seeds=self.n_seeds, n_folds=self.n_folds,
                        random_state=self.random_state)

    def model_specs(self) -> list[ModelSpec]:
        return [_SPECS[m] for m in self.models]

    def net_params(self, model: str) -> dict:
        p = dict(hidden_layers=self.hidden_layers, hidden_units=self.hidden_units,
                 dropout=self.dropout, lr=self.lr, batch_size=self.batch_size,
                 max_epochs=self.max_epochs, patience=self.patience)
        if model == "conditional-bias":
            p.update(attr_layers=self.attr_layers, n_bias=self.n_bias, training=self.training)
        return p

    def prepare(self, cohort: Cohort) -> StudyData:
        data = super().prepare(cohort)
        if len(np.unique(data.y)) != 2:
            raise ConfigError(f"the personalization study needs a binary target; "
                              f"{cohort.name}'s has {len(np.unique(data.y))} values.")
        data.y = data.y.astype(np.int64)
        check_group_sizes(data.groups, minimum=2 * self.n_folds,
                          purpose=f"by the study (2 per fold, {self.n_folds} folds)")
        return data

    def fit_predict(self, spec: ModelSpec, data: StudyData, plan: Plan, outer: int,
                    runs: list[dict], save_to: str | None) -> TaskOutput:
        X, y = data.X, data.y
        if spec.name == "logreg":
            Xa = X.to_numpy(dtype=np.float64)
            out = []
            for run in runs:
                pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
                pipe.fit(Xa[run["train"]], y[run["train"]])
                out.append(pipe.predict_proba(Xa)[:, 1])
            return TaskOutput({"proba": np.vstack(out)})
        est = _NETS[spec.name](**self.net_params(spec.name))
        est.fit_runs(X, y, sensitive_features=data.groups,
                     train_indices=[r["train"] for r in runs],
                     val_indices=[r["early_stop"] for r in runs],
                     seeds=[r["model_seed"] for r in runs])
        if save_to is not None:
            est.save(save_to)
        return TaskOutput({"proba": est.predict_proba_runs(X, sensitive_features=data.groups)})

    def evaluate(self, data: StudyData, plan: Plan,
                 outputs: dict[tuple[str, int], TaskOutput]) -> pd.DataFrame:
        y, groups = data.y, data.groups
        frames = []
        for outer in range(plan.spec.outer_splits):
            runs, test = plan.runs(outer), plan.rows(outer, "test")
            rows = {m: outputs[(m, outer)].arrays["proba"] for m in self.models
                    if outputs[(m, outer)].arrays}
            if self.harm_guard and "generic" in rows:
                for pm in ("decoupled", "conditional-bias"):
                    if pm in rows:
                        rows[f"harm-guard({pm})"] = _guarded(y, groups, runs, rows["generic"],
                                                             rows[pm], self.guard_alpha)
            for model, p in rows.items():
                m = group_metrics(y[test], p[:, test], groups[test])
                run = m.pop("run").to_numpy()
                m = m.rename(columns={"group": "subgroup"})
                m["model"], m["outer_split"] = model, outer
                m["seed"] = np.array([r["seed"] for r in runs])[run]
                m["fold"] = np.array([r["fold"] for r in runs])[run]
                frames.append(m)
        return tidy(pd.concat(frames, ignore_index=True), self.name)

    def summarize(self, results: pd.DataFrame) -> pd.DataFrame:
        return summarize(results.rename(columns={"subgroup": "group"}),
                         test_train_ratio=self.test_size / (1 - self.test_size))

    def render(self, summary: pd.DataFrame, results: pd.DataFrame, cohort_name: str,
               plan: Plan) -> str:
        from ...report import markdown_report
        return markdown_report(summary, title=f"{cohort_name}: {self.n_seeds} seeds x "
                               f"{self.n_folds} folds x {self.outer_splits} outer split(s)")


def _guarded(y: np.ndarray, groups: np.ndarray, runs: list[dict], p_generic: np.ndarray,
             p_pers: np.ndarray, alpha: float) -> np.ndarray:
    """Harm-guarded probabilities (n_runs, n): per run and group, generic where the run's
    guard rows show the personalized model to be worse (one-sided McNemar)."""
    from ...audit.guard import choose_per_group
    out = p_generic.copy()
    for r, run in enumerate(runs):
        v = run["guard"]
        report = choose_per_group(y[v], p_generic[r, v], p_pers[r, v], groups[v], alpha)
        personal = set(report.loc[report["model"] == "personalized", "group"])
        use = np.isin(groups, list(personal))
        out[r, use] = p_pers[r, use]
    return out


__all__ = ["MODEL_NAMES", "PersonalizationStudy"]
