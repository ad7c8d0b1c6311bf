"""The user's own data: a CSV / Parquet file or a DataFrame."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .._validation import check_binary_y, check_column
from ..errors import (ConfigError, DataNotFoundError, DatasetError, MissingValuesError,
                      TargetError)
from ..groups import GroupSpec
from .cohort import Cohort


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a ``.csv``/``.csv.gz``/``.tsv`` or ``.parquet`` file."""
    p = Path(path)
    if p.is_dir():
        raise DatasetError(f"{p} is a directory; give the data file itself (e.g. "
                           f"{p}/data.csv).")
    if not p.is_file():
        raise DataNotFoundError(f"data file {p} does not exist; check the path.")
    name = p.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(p)
        if name.endswith((".csv", ".csv.gz", ".txt")):
            return pd.read_csv(p)
        if name.endswith((".tsv", ".tsv.gz")):
            return pd.read_csv(p, sep="\t")
    except Exception as exc:  # pandas/pyarrow raise many types for unreadable files
        raise DatasetError(f"cannot read {p}: {exc}") from None
    raise DatasetError(f"{p} has an unknown file type; use .csv, .csv.gz, .tsv or .parquet.")


def load_tabular(data: str | os.PathLike | pd.DataFrame, *, target: str,
                 groups: Sequence[str] | GroupSpec, drop_group_columns: bool = False,
                 dropna: bool = False, task: str = "classification") -> Cohort:
    """Build a Cohort from the user's table.

    Parameters
    ----------
    data : file path (CSV/Parquet) or DataFrame.
    target : binary target column.
    groups : group specs (``["age:60", "sex"]``) or a :class:`GroupSpec`; numeric
        attributes take cut points, categorical ones are used as they are.
    drop_group_columns : remove the group columns from the features.
    dropna : drop rows with missing values instead of raising.
    task : ``"classification"`` (binary target, coded 0/1) or ``"regression"`` (numeric
        target kept as it is).

    Non-numeric feature columns are one-hot encoded.
    """
    if not target:
        raise ConfigError("--target is required with --data: name the binary outcome column.")
    frame = data.copy() if isinstance(data, pd.DataFrame) else read_table(data)
    spec = groups if isinstance(groups, GroupSpec) else GroupSpec.parse(groups)
    check_column(frame, target, role="target")
    for c in spec.columns:
        check_column(frame, c, role="group")
    if target in spec.columns:
        raise ConfigError(f"{target!r} is both the target and a group column.")
    n_raw = len(frame)
    if n_raw == 0:
        raise DatasetError("the data file has a header but no rows; check the file.")
    if dropna:
        frame = frame.dropna().reset_index(drop=True)
    elif frame.isna().any().any():
        cols = [str(c) for c in frame.columns[frame.isna().any()]][:5]
        raise MissingValuesError(
            f"missing values in columns {cols}; drop or impute them first, "
            "or pass dropna=True (CLI: --dropna) to drop those rows.")
    if len(frame) == 0:
        raise DatasetError("no rows left after dropping missing values.")
    if task == "regression":
        try:
            y01 = pd.to_numeric(frame[target]).to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            raise TargetError(f"target {target!r} must be numeric for --task regression."
                              ) from None
        classes = np.array([np.nan, np.nan])
    else:
        y01, classes = check_binary_y(frame[target], name=f"target {target!r}")
    group_frame = spec.transform(frame)
    X = frame.drop(columns=[target] + (spec.columns if drop_group_columns else []))
    if X.shape[1] == 0:
        raise ConfigError("no feature columns left; keep the group columns as features.")
    cat = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])
           and not pd.api.types.is_bool_dtype(X[c])]
    if cat:
        X = pd.get_dummies(X, columns=cat, dtype=np.float32)
    meta = {"name": Path(data).name if not isinstance(data, pd.DataFrame) else "dataframe",
            "target": target, "task": task, "positive_class": str(classes[1]), "rows_raw": n_raw,
            "group_spec": spec.describe(), "one_hot": [str(c) for c in cat]}
    return Cohort(X=X.astype(np.float32).reset_index(drop=True),
                  y=pd.Series(y01, name=target), groups=group_frame.reset_index(drop=True),
                  meta=meta)
