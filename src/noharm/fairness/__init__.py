"""Fairness metrics: the signed two-group forms for a binary protected attribute (A = 1
privileged) with bootstrap CIs; any number of groups and intersections
(:mod:`noharm.fairness.groupwise`, fairlearn-compatible), per-group tables and calibration;
differentiable proxies and balanced-accuracy threshold selection (DESIGN §5)."""
from . import groupwise
from .groupwise import (brier_score, calibration_by_group, demographic_parity_difference,
                        demographic_parity_ratio, equal_opportunity_ratio,
                        equalized_odds_ratio, expected_calibration_error, group_table)
from .metrics import (average_odds_difference, balanced_accuracy, bootstrap_ci,
                      equal_opportunity_difference, equalized_odds_difference,
                      fairness_report, group_rates, statistical_parity_difference)
from .proxies import eod_proxy, spd_proxy
from .threshold import best_threshold

__all__ = ["statistical_parity_difference", "equal_opportunity_difference",
           "average_odds_difference", "equalized_odds_difference", "balanced_accuracy",
           "group_rates", "bootstrap_ci", "fairness_report", "spd_proxy", "eod_proxy",
           "best_threshold", "groupwise", "demographic_parity_difference",
           "demographic_parity_ratio", "equal_opportunity_ratio", "equalized_odds_ratio",
           "group_table", "calibration_by_group", "expected_calibration_error", "brier_score"]
