"""Torch modules of noharm (no training loops here).

Every module carries a leading *ensemble axis* ``E``: parameters have shape
``(E, ...)`` and activations ``(E, batch, features)``.  A single model is an
ensemble of one.  This lets the protocol train its 25 fold x seed members in
one batched forward/backward (DESIGN §7).
"""
from .layers import EnsembleLinear, EnsembleMLP, EnsembleBatchNorm, Standardize, member_seeds_init
from .bias import ConditionalBiasNet

__all__ = ["EnsembleLinear", "EnsembleBatchNorm", "EnsembleMLP", "ConditionalBiasNet",
           "member_seeds_init", "Standardize"]
