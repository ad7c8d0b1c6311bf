"""Debias trained networks: intra-processing and post-processing (DESIGN §5)."""
from ._common import DebiasResult, Evaluator, RowData, Selector, as_module
from .intra import (adaptive_pruning, adversarial, bias_gradient, cluster_pruning,
                    engineered_gradient,
                    hidden_units, pruning, random_perturbation)
from .post import RejectOption, equalized_odds_postprocessing

__all__ = ["DebiasResult", "Evaluator", "RowData", "Selector", "as_module", "random_perturbation",
           "pruning", "adaptive_pruning", "cluster_pruning", "bias_gradient", "engineered_gradient",
           "adversarial", "hidden_units", "RejectOption", "equalized_odds_postprocessing"]
