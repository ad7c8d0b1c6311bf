"""Dataset loaders.  Every loader returns a :class:`Cohort`."""
from __future__ import annotations

import os
from typing import Any

from ..errors import DatasetError
from .cohort import Cohort
from .diabetes import load_diabetes
from .heart import load_heart
from .images import load_covid_cxr, load_image_cohort
from .mimic3 import build_mimic3_cohort, load_mimic3_mortality
from .synthetic import make_interaction_cohort, make_null_cohort, make_synthetic
from .tabular import load_tabular, read_table

DATASETS = {"synthetic": "built-in seeded synthetic cohort (no files needed)",
            "heart": "UCI Heart Disease, Cleveland (297 rows)",
            "diabetes130": "Diabetes 130-US hospitals, readmission < 30 days (split by patient)",
            "mimic3-mortality": "MIMIC-III in-hospital mortality, first ICU stay > 48 h (build "
                                "it with `noharm data mimic3`; credentialed access)",
            "covid-cxr": "266 chest X-rays (128 x 128), COVID-19 label, sex; images, for "
                         "`noharm debias` only (CC BY-NC-SA 4.0, no diagnostic claims)"}


def load_dataset(name: str, *, path: str | os.PathLike | None = None, **kw: Any) -> Cohort:
    """Load a built-in dataset by name (see ``DATASETS``)."""
    if name == "synthetic":
        return make_synthetic(**kw)
    if name == "heart":
        return load_heart(path)
    if name == "diabetes130":
        return load_diabetes(path, **kw)
    if name == "mimic3-mortality":
        return load_mimic3_mortality(path)
    if name == "covid-cxr":
        return load_covid_cxr(path)
    raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}, "
                       "or pass your own file with --data FILE --target COL --group COL.")


__all__ = ["Cohort", "load_heart", "build_mimic3_cohort", "load_mimic3_mortality", "load_diabetes", "make_interaction_cohort", "make_null_cohort", "make_synthetic", "load_tabular", "read_table",
           "load_dataset", "DATASETS", "load_covid_cxr", "load_image_cohort"]
