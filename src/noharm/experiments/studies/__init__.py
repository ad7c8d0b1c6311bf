"""The studies: declarations run by the one runner (:mod:`noharm.experiments.runner`).

Each study is imported on first use (PEP 562): ``noharm personalize`` does not pay for
the debiasing study's imports (scikit-learn's clustering, fairlearn...)."""
from __future__ import annotations

import importlib
from typing import Any

_WHERE = {"PersonalizationStudy": "personalization", "FairnessStudy": "fairness",
          "MixedStudy": "mixed", "DebiasStudy": "debias", "ImageDebiasStudy": "image_debias"}


def __getattr__(name: str) -> Any:
    if name == "STUDIES":
        studies = [__getattr__(n) for n in ("PersonalizationStudy", "FairnessStudy",
                                            "MixedStudy", "DebiasStudy")]
        return {s.name: s for s in studies}
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["STUDIES", "DebiasStudy", "ImageDebiasStudy", "FairnessStudy", "MixedStudy",
           "PersonalizationStudy"]
