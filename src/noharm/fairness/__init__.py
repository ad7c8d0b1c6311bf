"""Fairness metrics for a binary protected attribute (A = 1 privileged), their bootstrap
CIs, differentiable proxies, and balanced-accuracy threshold selection (DESIGN §5)."""
from .metrics import (average_odds_difference, balanced_accuracy, bootstrap_ci,
                      equal_opportunity_difference, equalized_odds_difference,
                      fairness_report, group_rates, statistical_parity_difference)
from .proxies import eod_proxy, spd_proxy
from .threshold import best_threshold

__all__ = ["statistical_parity_difference", "equal_opportunity_difference",
           "average_odds_difference", "equalized_odds_difference", "balanced_accuracy",
           "group_rates", "bootstrap_ci", "fairness_report", "spd_proxy", "eod_proxy",
           "best_threshold"]
