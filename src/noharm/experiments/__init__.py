"""The study engine: one split plan, one runner, four studies (DESIGN §8)."""
from typing import Any

from . import studies
from .plan import Plan, PlanSpec, make_plan
from .runner import RunOptions, StudyResult, build_plan, run_study, study_identity
from .summary import SUMMARY_COLUMNS, gain_summary, split_summary


def __getattr__(name: str) -> Any:
    """The studies, imported on first use (see :mod:`.studies`)."""
    if name in studies.__all__:
        return getattr(studies, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [*studies.__all__, "Plan", "PlanSpec", "RunOptions", "StudyResult", "build_plan",
           "make_plan", "run_study", "study_identity", "SUMMARY_COLUMNS", "gain_summary",
           "split_summary"]
