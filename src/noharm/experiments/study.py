"""What a study declares (DESIGN §8): its plan, its model specs, how one model spec is
fitted on some runs of one outer split, and how stored outputs become metrics and a
summary.  A study never splits rows, stores results, runs tasks in parallel or prints:
the plan (:mod:`.plan`) and the runner (:mod:`.runner`) do that for every study."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..datasets import Cohort
from ..errors import DatasetError
from .plan import Plan, PlanSpec
from .store import TaskOutput

#: Columns of every study's tidy ``results.csv`` (one row per measurement).
RESULT_COLUMNS = ["study", "model", "outer_split", "seed", "fold", "role", "subgroup",
                  "metric", "value", "n"]


@dataclass(frozen=True)
class ModelSpec:
    """One model of a study.

    Attributes
    ----------
    name : the name in tables and on the command line.
    batched : its runs train together as batched ensembles of at most ``ensemble_size``
        members (split into several tasks when there are more runs); otherwise one task
        per outer split trains all its runs.
    cost : tasks of lower cost run first (the slowest first keeps workers busy).
    skip_on : errors that mean "cannot run on this split" (e.g. a subgroup missing from a
        training fold for decoupled models): the task is stored with the reason instead
        of failing the study.
    """

    name: str
    batched: bool = True
    cost: int = 0
    skip_on: tuple[type[Exception], ...] = ()


@dataclass
class StudyData:
    """The validated arrays a study's tasks share (sent to every worker once)."""

    X: pd.DataFrame
    y: np.ndarray
    groups: np.ndarray                 # subgroup label per row
    attributes: pd.DataFrame           # one column per group attribute
    ids: np.ndarray | None = None      # rows sharing an id stay in one role
    extra: dict = field(default_factory=dict)
    external: "StudyData | None" = None   # an external validation set (--test-data)


class Study(ABC):
    """Base class of the four studies (personalization, fairness, mixed, debias)."""

    name: ClassVar[str]
    title: ClassVar[str]

    # -- declarations --------------------------------------------------------------------
    @abstractmethod
    def plan_spec(self) -> PlanSpec:
        """The split plan this study needs."""

    @abstractmethod
    def model_specs(self) -> list[ModelSpec]:
        """The models to train, in table order."""

    def options(self) -> dict:
        """Everything that defines the study's results (its identity in the store)."""
        d = asdict(self)   # type: ignore[call-overload]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def members_per_task(self) -> int:
        """Runs of a batched model trained (and stored) together as one ensemble."""
        return int(getattr(self, "ensemble_size", 25))

    # -- data ----------------------------------------------------------------------------
    def prepare(self, cohort: Cohort) -> StudyData:
        """Check the cohort against the options and return the arrays tasks need."""
        if cohort.meta.get("kind") == "images" and not self.takes_images:
            raise DatasetError(f"{cohort.name} is an image cohort; only `noharm debias` "
                               "(ImageDebiasStudy) takes images.")
        ids = None if cohort.split_by is None else cohort.split_by.to_numpy()
        return StudyData(X=cohort.X, y=cohort.y.to_numpy(),
                         groups=cohort.subgroups.to_numpy().astype(str),
                         attributes=cohort.groups.astype(str).reset_index(drop=True), ids=ids)

    def plan_inputs(self, data: StudyData) -> dict[str, Any]:
        """Keyword arguments of :func:`~.plan.make_plan` beyond the spec."""
        return {"groups": data.groups, "y": data.y, "ids": data.ids}

    # -- work ----------------------------------------------------------------------------
    @abstractmethod
    def fit_predict(self, spec: ModelSpec, data: StudyData, plan: Plan, outer: int,
                    runs: list[dict], save_to: str | None) -> TaskOutput:
        """Fit ``spec`` on ``runs`` of outer split ``outer``; return its predictions
        (arrays with a leading run axis when the spec is batched) and facts."""

    def timings(self, outputs: dict[tuple[str, int], TaskOutput]) -> dict[str, float]:
        """Seconds per model, summed over outer splits.  Timings never enter
        ``results.csv`` or the summary (they differ run to run, and a resumed study must
        equal an uninterrupted one to the byte); they go to config.json and stderr."""
        out: dict[str, float] = {}
        for (model, _), o in outputs.items():
            out[f"{model} (s)"] = out.get(f"{model} (s)", 0.0) + o.seconds
        return out

    @abstractmethod
    def evaluate(self, data: StudyData, plan: Plan,
                 outputs: dict[tuple[str, int], TaskOutput]) -> pd.DataFrame:
        """Tidy results (:data:`RESULT_COLUMNS`) from the stored outputs."""

    def evaluate_context(self, context: "Evaluation") -> pd.DataFrame:
        """:meth:`evaluate` within the run's one evaluation context (a study that decides
        something per outer split, such as the guard, decides it once there)."""
        return self.evaluate(context.data, context.plan, context.outputs)

    @abstractmethod
    def summarize(self, results: pd.DataFrame, context: "Evaluation | None" = None
                  ) -> pd.DataFrame:
        """The study's summary table (``summary.csv``); ``context`` gives the stored
        predictions for row-level inference (bootstrap over test rows)."""

    def summarize_external(self, results: pd.DataFrame, context: "Evaluation"
                           ) -> pd.DataFrame | None:
        """The summary of the external validation rows (role ``external``); None when the
        study does not evaluate on external data."""
        return None

    def extra_tables(self, context: "Evaluation") -> dict[str, pd.DataFrame]:
        """Further CSV files of the run directory (file name -> table); none by default."""
        return {}

    #: whether the study reads image cohorts (datasets.images)
    takes_images: ClassVar[bool] = False

    #: whether the study evaluates every run on an external file too (--test-data)
    external_validation: ClassVar[bool] = False

    @abstractmethod
    def render(self, summary: pd.DataFrame, results: pd.DataFrame, cohort_name: str,
               plan: Plan, external: pd.DataFrame | None = None) -> str:
        """Markdown for the terminal and ``summary.md``."""


@dataclass
class Evaluation:
    """What a summary may need beyond the tidy results: the data, the plan and every
    (model, outer split)'s stored outputs."""

    data: StudyData
    plan: Plan
    outputs: dict
    #: what a study decides once per outer split (e.g. the guard's certificate)
    decided: dict = field(default_factory=dict)


def tidy(rows: list[dict] | pd.DataFrame, study: str) -> pd.DataFrame:
    """Rows in the shared results schema (missing columns filled, columns ordered)."""
    df = pd.DataFrame(rows)
    df["study"] = study
    defaults = {"seed": 1, "fold": 0, "role": "test", "subgroup": "all", "n": np.nan,
                "outer_split": 0}
    for col, v in defaults.items():
        df[col] = v if col not in df.columns else df[col].fillna(v)
    return df[RESULT_COLUMNS].reset_index(drop=True)
