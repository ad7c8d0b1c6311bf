"""UCI Heart Disease, Cleveland (processed), prepared as in DESIGN §3.

Preprocessing: rows with a missing value (``?``) are dropped (303 -> 297);
``cp, thal, ca, slope, restecg`` are ordinal-encoded (sorted values -> 0..k-1);
the target is ``num > 0``; age group ``young`` (< 60) / ``old`` (>= 60); sex
``male`` (1) / ``female`` (0).  All 13 attributes stay features.
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ..errors import DatasetError
from ..groups import Attribute, GroupSpec
from ._fetch import resolve
from .cohort import Cohort

URL = ("https://archive.ics.uci.edu/ml/machine-learning-databases/heart-disease/"
       "processed.cleveland.data")
SHA256 = "a74b7efa387bc9d108d7d0115d831fe9b414b29ae7124f331b622b4efa0427c8"
COLUMNS = ["age", "sex", "cp", "trestbps", "chol", "fbs", "restecg", "thalach", "exang",
           "oldpeak", "slope", "ca", "thal", "num"]
ORDINAL = ["cp", "thal", "ca", "slope", "restecg"]
GROUPS = GroupSpec((Attribute("age", (60.0,), ("young", "old")),
                    Attribute("sex", None, {0.0: "female", 1.0: "male"})))


def load_heart(path: str | os.PathLike | None = None) -> Cohort:
    """Load the Cleveland heart-disease cohort (297 rows, 13 features).

    Parameters
    ----------
    path : the ``processed.cleveland.data`` file or a folder holding it; default:
        ``NOHARM_DATA_DIR``, then the user cache, then the copy shipped inside the
        package (18 KB, CC BY 4.0; its sha256 is checked like any other copy's).
    """
    file = resolve("uci_heart", "processed.cleveland.data", sha256=SHA256, url=URL, path=path)
    try:
        raw = pd.read_csv(file, header=None, names=COLUMNS, na_values="?")
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{file} is not the UCI Cleveland file: {exc}") from None
    n_raw = len(raw)
    df = raw.dropna().reset_index(drop=True)
    for c in ORDINAL:
        cats = np.sort(df[c].unique())
        df[c] = np.searchsorted(cats, df[c].to_numpy()).astype(float)
    y = (df.pop("num") > 0).astype(np.int64).rename("target")
    groups = GROUPS.transform(df)
    meta = {"name": "heart", "source": str(file), "rows_raw": n_raw,
            "rows_dropped_missing": n_raw - len(df),
            "group_spec": GROUPS.describe(),
            "preprocessing": "drop rows with '?'; ordinal-encode cp, thal, ca, slope, restecg; "
                             "target num > 0; age young < 60 <= old; sex 1 male / 0 female"}
    return Cohort(X=df.astype(np.float32), y=y, groups=groups, meta=meta)
