"""Diabetes 130-US hospitals 1999-2008 (Strack et al., 2014; UCI id 296).

Preprocessing (documented choices):

* read with ``?`` as missing and ``None`` kept as a category ("test not performed");
* encounters ending in death or hospice (discharge_disposition_id 11, 13, 14, 19, 20, 21)
  are dropped, as in the original study: they cannot be readmitted; so are the 3 rows with
  gender ``Unknown/Invalid``;
* target ``readmit30`` (default): ``readmitted == "<30"``; ``time_in_hospital`` gives the
  length of stay in days (a regression target; then it is not a feature);
* features: the 8 count columns, age (midpoint of its 10-year bin), one-hot of admission
  type / discharge disposition / admission source ids, max_glu_serum, A1Cresult, the 23
  medication columns, change, diabetesMed, payer_code (missing -> "Missing"),
  medical_specialty (10 most frequent, else "Other", missing -> "Missing"), and diag_1..3
  grouped into the ICD-9 chapters of Strack et al. (circulatory, respiratory, digestive,
  diabetes, injury, musculoskeletal, genitourinary, neoplasms, other, missing);
  ``weight`` (97 % missing) and the two id columns are dropped;
* groups: ``race`` (missing -> "Unknown"), ``gender``, ``age`` young (< 60) / old (>= 60);
* ``split_by`` = ``patient_nbr``: a patient's encounters never land in different splits.
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd

from .._validation import check_choice
from ..errors import DatasetError
from ._fetch import resolve
from .cohort import Cohort

SHA256 = "0689e7ec031237dc63031b938805c48377748761a3b26acab621567afa24df97"
DEAD_OR_HOSPICE = {11, 13, 14, 19, 20, 21}
COUNTS = ["time_in_hospital", "num_lab_procedures", "num_procedures", "num_medications",
          "number_outpatient", "number_emergency", "number_inpatient", "number_diagnoses"]
IDS = ["admission_type_id", "discharge_disposition_id", "admission_source_id"]
MEDS = ["metformin", "repaglinide", "nateglinide", "chlorpropamide", "glimepiride",
        "acetohexamide", "glipizide", "glyburide", "tolbutamide", "pioglitazone",
        "rosiglitazone", "acarbose", "miglitol", "troglitazone", "tolazamide", "examide",
        "citoglipton", "insulin", "glyburide-metformin", "glipizide-metformin",
        "glimepiride-pioglitazone", "metformin-rosiglitazone", "metformin-pioglitazone"]
TARGETS = ("readmit30", "time_in_hospital")


def icd9_chapter(code: str | float) -> str:
    """Strack et al.'s diagnosis groups of an ICD-9 code string."""
    if not isinstance(code, str) or code == "":
        return "missing"
    if code[0] in "VE":
        return "other"
    x = float(code)
    if 390 <= x <= 459 or int(x) == 785:
        return "circulatory"
    if 460 <= x <= 519 or int(x) == 786:
        return "respiratory"
    if 520 <= x <= 579 or int(x) == 787:
        return "digestive"
    if int(x) == 250:
        return "diabetes"
    if 800 <= x <= 999:
        return "injury"
    if 710 <= x <= 739:
        return "musculoskeletal"
    if 580 <= x <= 629 or int(x) == 788:
        return "genitourinary"
    if 140 <= x <= 239:
        return "neoplasms"
    return "other"


def load_diabetes(path: str | os.PathLike | None = None, *, target: str = "readmit30"
                  ) -> Cohort:
    """Load the Diabetes 130-US hospitals cohort (see the module docstring).

    Parameters
    ----------
    path : ``diabetic_data.csv`` or a folder holding it; default ``NOHARM_DATA_DIR`` /
        the user cache (no automatic download: the UCI archive is a zip).
    target : ``readmit30`` (binary) or ``time_in_hospital`` (days, regression).
    """
    check_choice(target, name="target", choices=TARGETS)
    file = resolve("diabetes130", "diabetic_data.csv", sha256=SHA256, url=None, path=path)
    try:
        raw = pd.read_csv(file, keep_default_na=False, na_values=["?"],
                          dtype={"diag_1": str, "diag_2": str, "diag_3": str})
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DatasetError(f"{file} is not the Diabetes 130 CSV: {exc}") from None
    n_raw = len(raw)
    df = raw[~raw["discharge_disposition_id"].isin(DEAD_OR_HOSPICE)
             & (raw["gender"] != "Unknown/Invalid")].reset_index(drop=True)
    age_lo = df["age"].str.extract(r"\[(\d+)-")[0].astype(float)
    groups = pd.DataFrame({"race": df["race"].fillna("Unknown"), "gender": df["gender"],
                           "age": np.where(age_lo >= 60, "old", "young")})
    if target == "readmit30":
        y = (df["readmitted"] == "<30").astype(np.int64).rename("readmit30")
        counts = COUNTS
    else:
        y = df["time_in_hospital"].astype(float).rename("time_in_hospital")
        counts = [c for c in COUNTS if c != "time_in_hospital"]
    X = df[counts].astype(np.float32)
    X["age_years"] = (age_lo + 5).astype(np.float32)
    cat = pd.DataFrame({c: df[c].astype(str) for c in IDS + MEDS
                        + ["max_glu_serum", "A1Cresult", "change", "diabetesMed"]})
    cat["payer_code"] = df["payer_code"].fillna("Missing")
    spec = df["medical_specialty"].fillna("Missing")
    top = spec[spec != "Missing"].value_counts().index[:10]
    cat["medical_specialty"] = spec.where(spec.isin(top) | (spec == "Missing"), "Other")
    for d in ("diag_1", "diag_2", "diag_3"):
        cat[d] = df[d].map(icd9_chapter)
    X = pd.concat([X, pd.get_dummies(cat, dtype=np.float32)], axis=1)
    meta = {"name": "diabetes130", "source": str(file), "rows_raw": n_raw,
            "rows_dropped_dead_hospice_unknown_gender": n_raw - len(df), "target": target,
            "group_spec": ["race", "gender", "age:60:young,old"],
            "preprocessing": "see noharm.datasets.diabetes"}
    return Cohort(X=X, y=y, groups=groups, meta=meta,
                  split_by=df["patient_nbr"].rename("patient_nbr"))
