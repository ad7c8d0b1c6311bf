"""Audit personalization: benefit of personalization (BoP) per subgroup, for prediction
and explanation quality, exact tests, reliability bounds and the harm guard (DESIGN §4,
§9).  The explanation parts (captum) load on first use."""
from .bop import audit_predictions, benefit_of_personalization, pointwise_loss
from .bounds import (fit_bop_family, k_max, prob_error_lower_bound, bounds_table,
                     chi2_per_sample)
from .guard import GUARD_METRICS, deploy, guard_tests, out_of_fold
from .stats import mcnemar_exact, verdicts

_LAZY = {"ATTRIBUTION_METHODS": "explain", "explanation_costs": "explain",
         "AuditResult": "run", "audit_models": "run"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["audit_predictions", "benefit_of_personalization", "pointwise_loss",
           "fit_bop_family", "k_max", "prob_error_lower_bound", "bounds_table",
           "chi2_per_sample", "ATTRIBUTION_METHODS", "explanation_costs", "mcnemar_exact",
           "verdicts", "GUARD_METRICS", "deploy", "guard_tests", "out_of_fold",
           "AuditResult", "audit_models"]
