"""The study engine: one split plan, one runner, four studies (DESIGN §8)."""
from .plan import Plan, PlanSpec, make_plan
from .runner import RunOptions, StudyResult, build_plan, run_study, study_identity
from .studies import (STUDIES, DebiasStudy, FairnessStudy, ImageDebiasStudy, MixedStudy,
                      PersonalizationStudy)
from .summary import SUMMARY_COLUMNS, gain_summary, split_summary

__all__ = ["STUDIES", "DebiasStudy", "ImageDebiasStudy", "FairnessStudy", "MixedStudy", "PersonalizationStudy",
           "Plan", "PlanSpec", "RunOptions", "StudyResult", "build_plan", "make_plan",
           "run_study", "study_identity", "SUMMARY_COLUMNS", "gain_summary",
           "split_summary"]
