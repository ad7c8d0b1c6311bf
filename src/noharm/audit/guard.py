"""The guard's tests and certificate, under the audit's name: they live in
:mod:`noharm.guard` (below the models, which deploy by them); this module re-exports
them for code that imports ``noharm.audit.guard``."""
from ..guard import (GUARD_METRICS, MIN_GUARD_UNITS, unit_means,  # noqa: F401
                     check_same_features, deploy, guard_tests, predict_p1)

__all__ = ["GUARD_METRICS", "MIN_GUARD_UNITS", "check_same_features", "deploy",
           "guard_tests", "predict_p1"]
