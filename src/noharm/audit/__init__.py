"""Audit personalization: benefit of personalization (BoP) per subgroup, for prediction
and explanation quality, exact tests, reliability bounds and the harm guard (DESIGN §4)."""
from .bop import audit_predictions, benefit_of_personalization, pointwise_loss
from .bounds import (fit_bop_family, k_max, prob_error_lower_bound, bounds_table,
                     chi2_per_sample)
from .explain import ATTRIBUTION_METHODS, explanation_costs
from .stats import mcnemar_exact, verdicts
from .guard import HarmGuard
from .run import AuditResult, audit_models

__all__ = ["audit_predictions", "benefit_of_personalization", "pointwise_loss",
           "fit_bop_family", "k_max", "prob_error_lower_bound", "bounds_table",
           "chi2_per_sample", "ATTRIBUTION_METHODS", "explanation_costs", "mcnemar_exact",
           "verdicts", "HarmGuard", "AuditResult", "audit_models"]
