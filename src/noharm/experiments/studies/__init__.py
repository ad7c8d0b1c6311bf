"""The studies: declarations run by the one runner (:mod:`noharm.experiments.runner`)."""
from .debias import DebiasStudy
from .fairness import FairnessStudy
from .image_debias import ImageDebiasStudy
from .mixed import MixedStudy
from .personalization import PersonalizationStudy

STUDIES = {s.name: s for s in (PersonalizationStudy, FairnessStudy, MixedStudy, DebiasStudy)}

__all__ = ["STUDIES", "DebiasStudy", "ImageDebiasStudy", "FairnessStudy", "MixedStudy", "PersonalizationStudy"]
