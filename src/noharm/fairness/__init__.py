"""Fairness metrics (DESIGN §5).

The top-level names follow fairlearn: ``metric(y_true, y_pred, *, sensitive_features)``
for any number of groups and intersections (:mod:`noharm.fairness.groupwise`; equal to
fairlearn's to float precision).  The signed two-group forms of a binary protected
attribute (A = 1 privileged; AIF360's conventions) keep names that fairlearn does not
use — ``statistical_parity_difference``, ``average_odds_difference``,
``signed_equal_opportunity_difference``, ``binary_group_rates`` — and take
``(y_true, y_pred, protected)``; the bootstrap CIs and ``fairness_report`` use them.
Also: per-group tables and calibration, differentiable proxies and balanced-accuracy
threshold selection.
"""
from . import groupwise
from .groupwise import (brier_score, calibration_by_group, demographic_parity_difference,
                        demographic_parity_ratio, equal_opportunity_difference,
                        equal_opportunity_ratio, equalized_odds_difference,
                        equalized_odds_ratio, expected_calibration_error, group_rates,
                        group_table)
from .metrics import average_odds_difference, balanced_accuracy, bootstrap_ci
from .metrics import equal_opportunity_difference as signed_equal_opportunity_difference
from .metrics import fairness_report
from .metrics import group_rates as binary_group_rates
from .metrics import statistical_parity_difference
from .proxies import eod_proxy, spd_proxy
from .threshold import best_threshold

__all__ = ["demographic_parity_difference", "demographic_parity_ratio",
           "equal_opportunity_difference", "equal_opportunity_ratio",
           "equalized_odds_difference", "equalized_odds_ratio", "group_rates", "group_table",
           "calibration_by_group", "expected_calibration_error", "brier_score", "groupwise",
           "statistical_parity_difference", "signed_equal_opportunity_difference",
           "average_odds_difference", "binary_group_rates", "balanced_accuracy",
           "bootstrap_ci", "fairness_report", "spd_proxy", "eod_proxy", "best_threshold"]
