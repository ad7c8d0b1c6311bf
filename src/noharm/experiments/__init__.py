"""The study engine: one split plan, one runner, four studies (DESIGN §8)."""
from typing import Any

from .plan import Plan, PlanSpec, make_plan
from .runner import RunOptions, StudyResult, build_plan, run_study, study_identity
from .summary import SUMMARY_COLUMNS, gain_summary, split_summary

_STUDIES = ("STUDIES", "DebiasStudy", "ImageDebiasStudy", "FairnessStudy", "MixedStudy",
            "PersonalizationStudy")


def __getattr__(name: str) -> Any:
    """The studies, imported on first use (see :mod:`.studies`)."""
    if name in _STUDIES:
        from . import studies
        return getattr(studies, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [*_STUDIES, "Plan", "PlanSpec", "RunOptions", "StudyResult", "build_plan",
           "make_plan", "run_study", "study_identity", "SUMMARY_COLUMNS", "gain_summary",
           "split_summary"]
