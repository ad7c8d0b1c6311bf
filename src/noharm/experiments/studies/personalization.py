"""The personalization study (seed 000, DESIGN §3 and §9): generic vs decoupled vs
conditional bias against the best generic reference, per subgroup, with the harm guard.

Per outer split the plan sets aside the test rows and, with the guard (default), a
held-out guard part of the training part (``guard_size``, stratified by subgroup x
label, grouped by patient).  Every model — references and candidates, seeds x folds
ensembles with early stopping — is fitted on the rest.  The guard rows are scored once
by the fitted ensembles (the average of their runs: the model that is deployed), and

* a candidate is deployed for a subgroup only where a one-sided paired test shows it
  beats the reference — every generic model of the study with ``reference="best"``
  (intersection-union test: nothing is selected on the tested rows) — Holm-corrected
  over subgroups x candidates (:mod:`noharm.guard`);
* the **reference** used everywhere else is the generic model (MLP ``generic``,
  ``logreg``, ``hgb``) with the lowest guard log-loss (``reference="generic"`` etc. fixes
  it and tests against that model only).

Every model, the reference and the guarded model are then measured on the outer split's
test rows; gains are paired per-run differences against the reference.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from sklearn.base import clone

from ..._validation import (check_choice, check_fraction, check_group_sizes, check_numeric_y,
                            check_positive_int)
from ...guard import GUARD_METRICS, MIN_GUARD_UNITS, deploy, guard_tests
from ...losses import pointwise_loss
from ...datasets import Cohort
from ...errors import ConfigError, GroupError, PersistenceError
from ...models import (ConditionalBiasClassifier, DecoupledClassifier, GenericClassifier,
                       GroupAware, GroupBlind, ReferenceClassifier)
from ...models.any_estimator import as_runs_model
from ...models.forms import attribute_columns
from ...models.regression import (ConditionalBiasRegressor, DecoupledRegressor,
                                  GenericRegressor, ReferenceRegressor, predict_runs)
from ...training import TrainConfig
from ..metrics import group_metrics, regression_metrics
from ..plan import Plan, PlanSpec
from ..store import TaskOutput
from ..study import Evaluation, ModelSpec, Study, StudyData, tidy
from ..summary import gain_summary

MODEL_NAMES = ("generic", "decoupled", "conditional-bias", "logreg", "hgb")
#: the group-aware forms (issue 28): the family told the subgroup as one-hot inputs, the
#: group columns removed; with one of them the references are fitted group-blind
AWARE = ("generic-aware", "logreg-aware", "hgb-aware")
REGRESSION_MODELS = ("generic", "decoupled", "conditional-bias", "linreg", "hgb")
REFERENCES = ("generic", "logreg", "hgb", "linreg")
CANDIDATES = ("decoupled", "conditional-bias", *AWARE)
TASKS = ("classification", "regression")
_NETS = {"generic": GenericClassifier, "decoupled": DecoupledClassifier,
         "conditional-bias": ConditionalBiasClassifier}
_NETS_REG = {"generic": GenericRegressor, "decoupled": DecoupledRegressor,
             "conditional-bias": ConditionalBiasRegressor}
_SPECS = {"conditional-bias": ModelSpec("conditional-bias", cost=0),
          "decoupled": ModelSpec("decoupled", cost=1, skip_on=(GroupError,)),
          "generic": ModelSpec("generic", cost=2),
          "hgb": ModelSpec("hgb", batched=False, cost=3),
          "logreg": ModelSpec("logreg", batched=False, cost=4),
          "linreg": ModelSpec("linreg", batched=False, cost=4),
          "generic-aware": ModelSpec("generic-aware", cost=2),
          "hgb-aware": ModelSpec("hgb-aware", batched=False, cost=3),
          "logreg-aware": ModelSpec("logreg-aware", batched=False, cost=4)}


@dataclass
class PersonalizationStudy(Study):
    """Everything that defines a personalization study's results."""

    name: ClassVar[str] = "personalization"
    title: ClassVar[str] = "generic vs decoupled vs conditional bias"
    external_validation: ClassVar[bool] = True

    models: tuple[str, ...] | None = None        # default: MODEL_NAMES / REGRESSION_MODELS
    task: str = "classification"
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
    guard: bool = True
    guard_size: float = 0.3                     # of the training part
    guard_min_n: int = MIN_GUARD_UNITS
    reference: str = "best"
    guard_metric: str | None = None             # default: log-loss / squared-error
    guard_alpha: float = 0.05
    margin: float = 0.0
    blind: bool | None = None          # references without the group columns; None: when
                                       # an aware candidate is among the models
    extra_references: dict | None = None   # name -> any scikit-learn classifier (issue 30)
    extra_candidates: dict | None = None   # name -> classifier (e.g. GroupAware(...))

    def __post_init__(self) -> None:
        check_choice(self.task, name="task", choices=TASKS)
        names = REGRESSION_MODELS if self.task == "regression" else MODEL_NAMES
        self.models = tuple(names if self.models is None else self.models)
        extras = self.extras
        if self.task == "classification":
            names = (*MODEL_NAMES, *AWARE)
        if extras:
            if self.task == "regression":
                raise ConfigError("extra_references / extra_candidates take classifiers; "
                                  "the regression study uses its own models.")
            both = set(self.extra_references or {}) & set(self.extra_candidates or {})
            clash = sorted((set(extras) & set(names)) | both)
            if clash:
                raise ConfigError(f"extra model name(s) {clash} are taken (built-in model "
                                  "names, or both a reference and a candidate); rename them.")
            for k, v in extras.items():
                if not (hasattr(v, "fit") and hasattr(v, "predict_proba")):
                    raise ConfigError(f"extra model {k!r} is a {type(v).__name__}, not a "
                                      "classifier with fit and predict_proba.")
            self.models = tuple(self.models) + tuple(k for k in extras
                                                     if k not in self.models)
            names = (*names, *extras)
        if self.guard_metric is None:
            self.guard_metric = "squared-error" if self.task == "regression" else "log-loss"
        if not self.models:
            raise ConfigError("no models selected; choose from " + ", ".join(names) + ".")
        for m in self.models:
            if m not in names:
                hint = (" (logreg is for classification; use linreg)" if m == "logreg" else
                        " (linreg is for --task regression; use logreg)" if m == "linreg"
                        else "")
                raise ConfigError(f"unknown model {m!r} for {self.task}{hint}; choose from "
                                  f"{', '.join(names)}.")
        if (self.task == "regression") != (self.guard_metric == "squared-error"):
            raise ConfigError(f"guard_metric {self.guard_metric!r} does not fit the "
                              f"{self.task} task; use "
                              + ("squared-error." if self.task == "regression" else
                                 "log-loss, zero-one or auroc."))
        if len(set(self.models)) != len(self.models):
            raise ConfigError(f"models repeat: {list(self.models)}.")
        check_positive_int(self.ensemble_size, name="ensemble_size")
        for name in ("hidden_layers", "hidden_units", "attr_layers"):
            check_positive_int(getattr(self, name), name=name)
        check_choice(self.training, name="training", choices=("two_stage", "joint"))
        check_choice(self.reference, name="reference",
                     choices=("best", *REFERENCES, *(self.extra_references or {})))
        check_choice(self.guard_metric, name="guard_metric", choices=GUARD_METRICS)
        check_fraction(self.guard_alpha, name="guard_alpha", high=0.5)
        if not 0 <= self.margin < 1:
            raise ConfigError(f"margin must be in [0, 1), got {self.margin}.")
        if not 1 <= self.n_bias <= min(self.hidden_layers, self.attr_layers):
            raise ConfigError(f"n_bias must be between 1 and min(hidden_layers, "
                              f"attr_layers) = {min(self.hidden_layers, self.attr_layers)}.")
        refs = self.references
        if not refs:
            raise ConfigError("the models need a generic reference (generic, "
                              + ("linreg" if self.task == "regression" else "logreg")
                              + " or hgb).")
        if self.reference != "best" and self.reference not in self.models:
            raise ConfigError(f"reference {self.reference!r} is not among the models "
                              f"{list(self.models)}.")
        check_fraction(self.guard_size, name="guard_size", high=0.6)
        check_positive_int(self.guard_min_n, name="guard_min_n", minimum=2)
        self.plan_spec().validate()

    @property
    def candidates(self) -> list[str]:
        return [m for m in self.models if m in CANDIDATES or m in (self.extra_candidates or {})]

    @property
    def extras(self) -> dict:
        """The user's own models by name (extra references and candidates)."""
        return {**(self.extra_references or {}), **(self.extra_candidates or {})}

    @property
    def references(self) -> list[str]:
        """The generic models among the study's models (built-in and extra)."""
        return [m for m in self.models if m in REFERENCES or m in (self.extra_references or {})]

    def options(self) -> dict:
        out = super().options()
        for k in ("extra_references", "extra_candidates"):       # JSON: the estimators' repr
            if out.get(k):
                out[k] = {n: repr(e) for n, e in getattr(self, k).items()}
        return out

    @property
    def blind_references(self) -> bool:
        """Whether the references are fitted without the group columns."""
        return bool(self.blind) if self.blind is not None else any(
            m in AWARE for m in self.models)

    def plan_spec(self) -> PlanSpec:
        return PlanSpec(outer_splits=self.outer_splits, test_size=self.test_size,
                        guard=(round(self.guard_size * (1 - self.test_size), 6)
                               if self.guard else "none"),
                        n_seeds=self.n_seeds, n_folds=self.n_folds,
                        random_state=self.random_state)

    def model_specs(self) -> list[ModelSpec]:
        return [_SPECS.get(m) or ModelSpec(m, batched=False, cost=3) for m in self.models]

    def net_params(self, model: str) -> dict:
        p = dict(hidden_layers=self.hidden_layers, hidden_units=self.hidden_units,
                 dropout=self.dropout, lr=self.lr, batch_size=self.batch_size,
                 max_epochs=self.max_epochs, patience=self.patience)
        if model == "conditional-bias":
            p.update(attr_layers=self.attr_layers, n_bias=self.n_bias, training=self.training)
        return p

    def prepare(self, cohort: Cohort) -> StudyData:
        data = super().prepare(cohort)
        if self.task == "regression":
            data.y = check_numeric_y(data.y, name=f"target of {cohort.name}")
        elif len(np.unique(data.y)) != 2:
            raise ConfigError(f"the personalization study needs a binary target; "
                              f"{cohort.name}'s has {len(np.unique(data.y))} values (for a "
                              "continuous outcome use --task regression).")
        else:
            data.y = data.y.astype(np.int64)
        check_group_sizes(data.groups, minimum=2 * self.n_folds,
                          purpose=f"by the study (2 per fold, {self.n_folds} folds)",
                          hint=cohort.meta.get("group_hint"))
        return data

    def fit_predict(self, spec: ModelSpec, data: StudyData, plan: Plan, outer: int,
                    runs: list[dict], save_to: str | None) -> TaskOutput:
        if self.task == "regression":
            est = (ReferenceRegressor(kind=spec.name) if spec.name in ("linreg", "hgb") else
                   _NETS_REG[spec.name](**self.net_params(spec.name)))
        else:
            family = spec.name.removesuffix("-aware")
            est = (as_runs_model(clone(self.extras[spec.name])) if spec.name in self.extras
                   else ReferenceClassifier(kind=family) if family in ("logreg", "hgb")
                   else _NETS[family](**self.net_params(family)))
            cols = tuple(attribute_columns(data.X, list(data.attributes.columns)))
            if spec.name in AWARE:
                est = GroupAware(est, group_columns=cols)
            elif spec.name in self.references and self.blind_references:
                est = GroupBlind(est, group_columns=cols)
        est.fit_runs(data.X, data.y, sensitive_features=data.groups,
                     train_indices=[r["train"] for r in runs],
                     val_indices=[r["early_stop"] for r in runs],
                     seeds=[r["model_seed"] for r in runs])
        note = None
        if save_to is not None and hasattr(est, "save"):
            try:
                est.save(save_to)
            except PersistenceError as exc:      # e.g. an xgboost extra model: not saved
                note = f"split {outer}: {spec.name} was not saved: {exc}"
        arrays = {"proba": predict_runs(est, data.X, data.groups)}     # P(y=1) or prediction
        if data.external is not None:
            arrays["proba_external"] = predict_runs(est, data.external.X,
                                                    data.external.groups)
        return TaskOutput(arrays, note=note)

    # -- evaluation ------------------------------------------------------------------------
    def split_rows(self, context: Evaluation, outer: int, external: bool = False
                   ) -> tuple[dict[str, np.ndarray], pd.DataFrame | None, dict[str, float]]:
        """Probabilities (n_runs, n) of every model of an outer split plus ``reference``
        and ``guarded``; the guard's certificate (its ``reference`` column names the
        reference used); the references' guard log-loss.  ``external``: the
        probabilities on the external rows (the guard still decides on the training
        part's guard predictions)."""
        rows, cert, losses = self._split_rows(context, outer)
        if not external:
            return rows, cert, losses
        ext = context.data.external
        probas = {m: context.outputs[(m, outer)].arrays["proba_external"] for m in self.models
                  if context.outputs[(m, outer)].arrays}
        ref = cert["reference"].iloc[0] if cert is not None else self._fixed_reference(
            [m for m in self.references if m in probas])
        out = {**probas, "reference": probas[ref]}
        if cert is not None:
            guarded = probas[ref].copy()
            for group, model in zip(cert["group"], cert["deployed"]):
                use = ext.groups == group
                guarded[:, use] = probas[model][:, use]
            out["guarded"] = guarded
        return out, cert, losses

    def _fixed_reference(self, refs: list[str]) -> str:
        """The reference without a guard: the one asked for, else generic, else the first."""
        return self.reference if self.reference != "best" else (
            "generic" if "generic" in refs else refs[0])

    def _split_rows(self, context: Evaluation, outer: int
                    ) -> tuple[dict[str, np.ndarray], pd.DataFrame | None, dict[str, float]]:
        data = context.data
        probas = {m: context.outputs[(m, outer)].arrays["proba"] for m in self.models
                  if context.outputs[(m, outer)].arrays}
        refs = [m for m in self.references if m in probas]
        if not refs:
            raise ConfigError(f"split {outer}: no reference model produced predictions.")
        if not self.guard:
            ref = self._fixed_reference(refs)
            return {**probas, "reference": probas[ref]}, None, {}
        key = ("guard", outer)
        if key not in context.decided:
            context.decided[key] = self._decide(context, outer, probas, refs)
        cert, losses = context.decided[key]
        ref = cert["reference"].iloc[0]
        guarded = probas[ref].copy()
        for group, model in zip(cert["group"], cert["deployed"]):
            use = data.groups == group
            guarded[:, use] = probas[model][:, use]
        return {**probas, "reference": probas[ref], "guarded": guarded}, cert, losses

    def _decide(self, context: Evaluation, outer: int, probas: dict[str, np.ndarray],
                refs: list[str]) -> tuple[pd.DataFrame, dict[str, float]]:
        """The guard's decision for an outer split, made once: the guard rows scored by
        each fitted ensemble (its runs averaged, as deployed), the fallback reference
        (lowest guard loss, or the fixed one), and the certificate."""
        data, plan = context.data, context.plan
        guard = plan.rows(outer, "guard")
        if not len(guard):
            raise ConfigError(f"split {outer}: the plan has no guard rows; the guard needs "
                              "a plan made with a guard part.")
        seeds = np.array([r["seed"] for r in plan.runs(outer)])
        # per seed the sub-ensemble of its runs; their mean is the deployed ensemble
        p = {m: np.stack([pr[seeds == s][:, guard].mean(0) for s in np.unique(seeds)])
             for m, pr in probas.items()}
        y, g = data.y[guard], data.groups[guard]
        kind = "squared_error" if self.task == "regression" else "log_loss"
        losses = {m: float(np.mean(pointwise_loss(y, p[m].mean(0), kind))) for m in refs}
        tested = refs if self.reference == "best" else [self.reference]
        ref = min(losses, key=losses.get) if self.reference == "best" else self.reference
        tests = guard_tests(y, g, {r: p[r] for r in tested},
                            {c: p[c] for c in self.candidates if c in p},
                            metric=self.guard_metric, alpha=self.guard_alpha,
                            margin=self.margin,
                            ids=None if data.ids is None else data.ids[guard],
                            min_units=self.guard_min_n, random_state=self.random_state)
        return deploy(tests, sorted(set(data.groups)), ref, self.guard_alpha), losses

    def evaluate(self, data: StudyData, plan: Plan,
                 outputs: dict[tuple[str, int], TaskOutput]) -> pd.DataFrame:
        return self.evaluate_context(Evaluation(data, plan, outputs))

    def evaluate_context(self, context: Evaluation) -> pd.DataFrame:
        data, plan = context.data, context.plan
        frames, guard_rows = [], []
        for outer in range(plan.spec.outer_splits):
            runs, test = plan.runs(outer), plan.rows(outer, "test")
            rows, cert, losses = self.split_rows(context, outer)
            for model, p in rows.items():
                m = self._metrics(data.y[test], p[:, test], data.groups[test])
                run = m.pop("run").to_numpy()
                m = m.rename(columns={"group": "subgroup"})
                m["model"], m["outer_split"] = model, outer
                m["seed"] = np.array([r["seed"] for r in runs])[run]
                m["fold"] = np.array([r["fold"] for r in runs])[run]
                frames.append(m)
                if self.task == "classification":
                    frames.append(self._gap_rows(model, p[:, test] >= 0.5, data, test,
                                                 runs, outer))
            if data.external is not None:
                ext = data.external
                ext_rows, _, _ = self.split_rows(context, outer, external=True)
                for model, p in ext_rows.items():
                    m = self._metrics(ext.y, p, ext.groups)
                    run = m.pop("run").to_numpy()
                    m = m.rename(columns={"group": "subgroup"})
                    m["model"], m["outer_split"], m["role"] = model, outer, "external"
                    m["seed"] = np.array([r["seed"] for r in runs])[run]
                    m["fold"] = np.array([r["fold"] for r in runs])[run]
                    frames.append(m)
            guard_rows += _guard_rows(cert, losses, outer)
        if guard_rows:
            frames.append(tidy(guard_rows, self.name).drop(columns="study"))
        return tidy(pd.concat(frames, ignore_index=True), self.name)

    def extra_tables(self, context: Evaluation) -> dict[str, pd.DataFrame]:
        """``calibration.csv``: reliability-diagram points per model and subgroup (10
        equal-width bins of the predicted probability), pooled over every run's test
        predictions (classification only)."""
        if self.task != "classification":
            return {}
        from ...fairness.groupwise import reliability_table
        data, plan = context.data, context.plan
        frames = []
        for outer in range(plan.spec.outer_splits):
            test = plan.rows(outer, "test")
            rows, _, _ = self.split_rows(context, outer)
            for model, p in rows.items():
                pt = p[:, test]
                t = reliability_table(np.tile(data.y[test], len(pt)), pt.ravel(),
                                      sensitive_features=np.tile(data.groups[test], len(pt)))
                t["model"] = model
                frames.append(t)
        if not frames:
            return {}
        t = pd.concat(frames, ignore_index=True)
        t["sum_p"], t["sum_y"] = t["mean_predicted"] * t["n"], t["observed_rate"] * t["n"]
        g = t.groupby(["model", "group", "bin"], sort=False)[["n", "sum_p", "sum_y"]].sum()
        g = g.reset_index()
        g["mean_predicted"], g["observed_rate"] = g["sum_p"] / g["n"], g["sum_y"] / g["n"]
        return {"calibration.csv": g.rename(columns={"group": "subgroup"})[
            ["model", "subgroup", "bin", "n", "mean_predicted", "observed_rate"]]}

    def _gap_rows(self, model: str, pred: np.ndarray, data: StudyData, test: np.ndarray,
                  runs: list[dict], outer: int) -> pd.DataFrame:
        """Per run, the between-groups demographic-parity and equalized-odds differences
        across each group attribute on the test rows (role ``fairness``, subgroup
        ``attribute <name>``): what a model does to the gaps."""
        from ...fairness.groupwise import gaps_by_run
        rows = []
        for col in data.attributes.columns:
            gaps = gaps_by_run(data.y[test], pred, data.attributes[col].to_numpy()[test])
            for metric, v in gaps.items():
                rows.append(pd.DataFrame({
                    "model": model, "outer_split": outer, "role": "fairness",
                    "subgroup": f"attribute {col}", "metric": metric, "value": v,
                    "n": len(test), "seed": [r["seed"] for r in runs],
                    "fold": [r["fold"] for r in runs]}))
        return pd.concat(rows, ignore_index=True)

    def _metrics(self, y: np.ndarray, p: np.ndarray, groups: np.ndarray) -> pd.DataFrame:
        return (regression_metrics if self.task == "regression" else group_metrics)(
            y, p, groups)

    def summarize(self, results: pd.DataFrame, context: Evaluation | None = None
                  ) -> pd.DataFrame:
        row_diffs = self._row_diffs(context) if (
            context is not None and self.outer_splits == 1) else None
        summary = gain_summary(results[results["role"] == "test"], reference="reference",
                               test_train_ratio=self.test_size / (1 - self.test_size),
                               alpha=self.guard_alpha, row_diffs=row_diffs,
                               row_metric=self._row_metric)
        gaps = results[results["role"] == "fairness"]
        if gaps.empty:
            return summary
        return pd.concat([summary, gain_summary(
            gaps, reference="reference", test_train_ratio=self.test_size / (1 - self.test_size),
            alpha=self.guard_alpha)], ignore_index=True)

    @property
    def _row_metric(self) -> str:
        """The metric with a per-row bootstrap interval when there is one outer split."""
        return "mse" if self.task == "regression" else "accuracy"

    def _row_scores(self, p: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Per row, the run-averaged correctness (classification) or squared error."""
        if self.task == "regression":
            return ((p - y) ** 2).mean(0)
        return ((p >= 0.5) == (y == 1)).mean(0)

    def summarize_external(self, results: pd.DataFrame, context: Evaluation
                           ) -> pd.DataFrame:
        """Per subgroup on the external file: every run's model is scored on all external
        rows; intervals bootstrap the external rows (the run-averaged per-row accuracy
        difference against the reference, runs of every outer split pooled)."""
        ext = results[results["role"] == "external"].copy()
        ext["outer_split"] = 0            # one fixed test set: pool the outer splits
        ext["seed"] = ext["seed"] + 1_000_000 * results.loc[ext.index, "outer_split"]
        return gain_summary(ext, reference="reference", test_train_ratio=float("nan"),
                            alpha=self.guard_alpha,
                            row_diffs=self._row_diffs(context, external=True),
                            row_metric=self._row_metric)

    def _row_diffs(self, context: Evaluation, external: bool = False
                            ) -> dict[tuple[str, str], np.ndarray]:
        """Per (subgroup, model), each test row's run-averaged correctness minus the
        reference's (for the bootstrap over test rows): outer split 0's test rows, or
        every external row with the runs of all outer splits."""
        data = context.data
        if external:
            y, g = data.external.y, data.external.groups
            splits = [self.split_rows(context, o, external=True)[0]
                      for o in range(context.plan.spec.outer_splits)]
            rows = {m: np.concatenate([s[m] for s in splits]) for m in splits[0]
                    if all(m in s for s in splits)}
            correct = {m: self._row_scores(p, y) for m, p in rows.items()}
        else:
            test = context.plan.rows(0, "test")
            rows, _, _ = self.split_rows(context, 0)
            y, g = data.y[test], data.groups[test]
            correct = {m: self._row_scores(p[:, test], y) for m, p in rows.items()}
        out = {}
        for m, c in correct.items():
            d = c - correct["reference"]
            out[("all", m)] = d
            for grp in np.unique(g):
                out[(str(grp), m)] = d[g == grp]
        return out

    def render(self, summary: pd.DataFrame, results: pd.DataFrame, cohort_name: str,
               plan: Plan, external: pd.DataFrame | None = None) -> str:
        from ...report import markdown_report
        guard = results[results["role"] == "guard"]
        return markdown_report(summary, title=f"{cohort_name}: {self.n_seeds} seeds x "
                               f"{self.n_folds} folds x {self.outer_splits} outer split(s)",
                               guard=guard, alpha=self.guard_alpha, external=external)


def _guard_rows(cert: pd.DataFrame | None, losses: dict[str, float], outer: int) -> list[dict]:
    """The guard's decisions as tidy rows (role ``guard``): the reference used (metric
    ``reference``, value 1), per subgroup the deployed model (value 1), the generic model
    of the binding comparison (metric ``versus``) and its test, per reference model its
    guard loss (metric ``guard_log_loss``: log-loss, or squared error for regression)."""
    if cert is None:
        return []
    rows = [{"model": m, "outer_split": outer, "role": "guard", "subgroup": "all",
             "metric": "guard_log_loss", "value": v} for m, v in losses.items()]
    rows.append({"model": cert["reference"].iloc[0], "outer_split": outer, "role": "guard",
                 "subgroup": "all", "metric": "reference", "value": 1.0})
    for r in cert.itertuples():
        base = {"outer_split": outer, "role": "guard", "subgroup": r.group, "n": r.n}
        rows.append({**base, "model": r.deployed, "metric": "deployed", "value": 1.0})
        rows.append({**base, "model": r.versus, "metric": "versus", "value": 1.0})
        for k in ("effect", "ci_low", "ci_high", "p_value", "p_holm", "detectable"):
            rows.append({**base, "model": "guarded", "metric": f"guard_{k}",
                         "value": getattr(r, k)})
    return rows


__all__ = ["CANDIDATES", "MODEL_NAMES", "PersonalizationStudy", "REFERENCES"]
