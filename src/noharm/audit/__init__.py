"""Audit personalization: benefit of personalization (BoP) per subgroup, for prediction
and explanation quality, exact tests, reliability bounds and the harm guard (DESIGN §4,
§9).  Every part loads on first use (``noharm audit bounds`` needs no scipy.stats,
torch or captum)."""
_LAZY = {"audit_predictions": "bop", "benefit_of_personalization": "bop",
         "pointwise_loss": "bop", "fit_bop_family": "bounds", "k_max": "bounds",
         "prob_error_lower_bound": "bounds", "bounds_table": "bounds",
         "chi2_per_sample": "bounds", "GUARD_METRICS": "guard", "deploy": "guard",
         "guard_tests": "guard", "mcnemar_exact": "stats",
         "verdicts": "stats", "ATTRIBUTION_METHODS": "explain",
         "explanation_costs": "explain", "AuditResult": "run", "audit_models": "run",
         "FairUseAudit": "fair_use"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["audit_predictions", "benefit_of_personalization", "pointwise_loss",
           "fit_bop_family", "k_max", "prob_error_lower_bound", "bounds_table",
           "chi2_per_sample", "ATTRIBUTION_METHODS", "explanation_costs", "mcnemar_exact",
           "verdicts", "GUARD_METRICS", "deploy", "guard_tests",
           "AuditResult", "audit_models", "FairUseAudit"]
