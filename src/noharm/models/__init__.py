"""scikit-learn style estimators: binary classifiers and regressors."""
from .base import NetClassifier, train_val_split
from .conditional_bias import ConditionalBiasClassifier
from .decoupled import DecoupledClassifier
from .fairgrad import FairGradClassifier
from .forms import GroupAware, GroupBlind
from .generic import GenericClassifier
from .guarded import GuardedClassifier
from .mixed_effects import MixedEffectsClassifier, MixedEffectsRegressor
from .reference import ReferenceClassifier
from .regression import (ConditionalBiasRegressor, DecoupledRegressor, GenericRegressor,
                         ReferenceRegressor)

__all__ = ["NetClassifier", "GenericClassifier", "DecoupledClassifier",
           "ConditionalBiasClassifier", "FairGradClassifier", "MixedEffectsClassifier",
           "MixedEffectsRegressor", "GuardedClassifier", "ReferenceClassifier",
           "GroupAware", "GroupBlind",
           "train_val_split", "GenericRegressor", "DecoupledRegressor",
           "ConditionalBiasRegressor", "ReferenceRegressor"]
