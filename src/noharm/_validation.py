"""Every input check of noharm lives here.

Functions take user input (arrays, frames, series, configs) and return clean
numpy / pandas objects or raise a specific :class:`~noharm.errors.NoharmError`.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .errors import (
    ColumnNotFoundError,
    ConfigError,
    NotNumericError,
    FeatureMismatchError,
    GroupError,
    LengthMismatchError,
    MissingValuesError,
    TargetError,
)


def _py(v: Any) -> Any:
    """A numpy scalar as the Python value (messages show ``1``, not ``np.int64(1)``)."""
    return v.item() if isinstance(v, np.generic) else v


def check_X(X: Any, *, name: str = "X", allow_nan: bool = False
            ) -> tuple[np.ndarray, list[str]]:
    """Return X as a float32 2-D array and its feature names.

    ``allow_nan=True`` (models with ``impute="median"``) keeps missing values as NaN;
    infinite values are an error either way.

    Raises
    ------
    MissingValuesError
        If X holds NaN/None (and ``allow_nan`` is False) or infinite values; the message
        names the first offending columns.
    ConfigError
        If X is not 2-D, is empty or holds non-numeric columns.
    """
    if isinstance(X, pd.DataFrame):
        names = [str(c) for c in X.columns]
        if len(set(names)) != len(names):
            dup = sorted({c for c in names if names.count(c) > 1})
            raise ConfigError(f"{name} repeats the column(s) {dup[:5]}; give every column a "
                              "different name (e.g. X.loc[:, ~X.columns.duplicated()]).")
        non_numeric = [str(c) for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])
                       and not pd.api.types.is_bool_dtype(X[c])]
        if non_numeric:
            raise ConfigError(
                f"{name} has non-numeric columns {non_numeric[:5]}; encode them first "
                "(e.g. pandas.get_dummies or noharm.datasets.load_tabular, which one-hot encodes)."
            )
        missing = [] if allow_nan else X.columns[X.isna().any()].tolist()
        if missing:
            raise MissingValuesError(
                f"{name} has missing values in columns {[str(c) for c in missing[:5]]}; "
                "use impute='median' (CLI: --impute median) or drop those rows (X.dropna())."
            )
        with warnings.catch_warnings():           # a value beyond float32 becomes inf,
            warnings.simplefilter("ignore", RuntimeWarning)   # reported below by name
            arr = X.to_numpy(dtype=np.float32, na_value=np.nan)
    else:
        if hasattr(X, "tocsr") or type(X).__module__.startswith("scipy.sparse"):
            raise ConfigError(f"Sparse data was passed for {name}, but dense data is "
                              "required (sparse input is not supported); use X.toarray().")
        X = np.asarray(X)
        if np.iscomplexobj(X):
            raise ConfigError(f"Complex data not supported: {name} holds complex numbers.")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                arr = np.asarray(X, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise NotNumericError(f"{name} must be numeric: {exc}") from None
        if arr.ndim == 1:
            raise ConfigError(f"{name} must be 2-D (rows x features), got a 1-D array. "
                              "Reshape your data: X.reshape(-1, 1) for a single feature, "
                              "X.reshape(1, -1) for a single row.")
        names = [f"x{i}" for i in range(arr.shape[1])] if arr.ndim == 2 else []
    if not arr.flags.writeable or not arr.flags.c_contiguous:
        arr = np.array(arr, dtype=np.float32, order="C")   # torch needs writable memory
    if arr.ndim != 2:
        raise ConfigError(f"{name} must be 2-D (rows x features), got shape {arr.shape}.")
    if arr.shape[0] == 0:
        raise ConfigError(f"{name} is empty: 0 sample(s) (shape={arr.shape}) while a minimum "
                          "of 1 is required; it needs rows.")
    if arr.shape[1] == 0:
        raise ConfigError(f"{name} is empty: 0 feature(s) (shape={arr.shape}) while a minimum "
                          "of 1 is required; it needs feature columns.")
    finite = np.isfinite(arr) | np.isnan(arr) if allow_nan else np.isfinite(arr)
    if not finite.all():
        bad = np.where(~finite.all(axis=0))[0][:5]
        what = "infinite values (or values beyond float32)" if allow_nan else \
            "missing or infinite values (or values beyond float32)"
        raise MissingValuesError(
            f"{name} has {what} in columns {[names[i] for i in bad]}; "
            "fix those cells (missing values: impute='median', CLI --impute median)."
        )
    return arr, names


def align_features(X: Any, feature_names: Sequence[str], *, who: str) -> Any:
    """X with its columns in the fitted order (a DataFrame with the same names in another
    order is reordered); missing or unknown columns are a FeatureMismatchError naming
    them.  Arrays (no names) are checked by their width only."""
    names = [str(c) for c in feature_names]
    if isinstance(X, pd.DataFrame):
        cols = [str(c) for c in X.columns]
        missing = [c for c in names if c not in set(cols)]
        extra = [c for c in cols if c not in set(names)]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {_show(missing)}")
            if extra:
                parts.append(f"unknown {_show(extra)}")
            raise FeatureMismatchError(
                f"X does not have the columns {who} was fitted with: {'; '.join(parts)}; "
                "pass the same feature columns as in fit (any order).")
        if len(set(cols)) != len(cols):
            dup = sorted({c for c in cols if cols.count(c) > 1})
            raise FeatureMismatchError(f"X repeats the columns {_show(dup)}; give each once.")
        if cols != names:
            X = X.set_axis(cols, axis=1)[names]
        return X
    shape = np.shape(np.asarray(X)) if not hasattr(X, "shape") else X.shape
    width = shape[1] if len(shape) == 2 else None
    if width is not None and width != len(names):
        raise FeatureMismatchError(
            f"X has {width} features, but {who} is expecting {len(names)} features as input "
            "(the columns it was fitted with); pass the same columns as in fit.")
    return X


def _show(items: Sequence[str], k: int = 8) -> str:
    shown = ", ".join(repr(str(c)) for c in items[:k])
    return f"[{shown}{', ...' if len(items) > k else ''}] ({len(items)})" if len(items) > k \
        else f"[{shown}]"


def check_binary_y(y: Any, *, n_rows: int | None = None, name: str = "y"
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(labels, classes)``: y as int64 0/1 labels and the two original values.

    Accepts 0/1, booleans, or any two values (the larger/later sorted one becomes 1).
    """
    y = _one_column(y, name)
    ser = pd.Series(np.asarray(y).ravel() if not isinstance(y, pd.Series) else y.to_numpy())
    if ser.isna().any():
        raise MissingValuesError(
            f"{name} has {int(ser.isna().sum())} missing values; drop those rows before fitting."
        )
    values = pd.unique(ser)
    if len(values) != 2:
        if len(values) < 2:
            raise TargetError(
                f"{name} has one class only ({_py(values[0])!r}); a binary classifier needs "
                "both classes."
            )
        shown = sorted(map(str, values))[:6]
        num = pd.to_numeric(ser, errors="coerce")
        kind = ("Unknown label type: continuous. " if num.notna().all() and
                not np.allclose(num, np.round(num)) else "")
        raise TargetError(
            f"{kind}Only binary classification is supported: {name} must be binary, got "
            f"{len(values)} distinct values {shown}; "
            "binarize it first (e.g. y = (y > 0).astype(int); on the command line a target "
            f"expression such as --target '{_column_of(name)}>0')."
        )
    try:
        classes = np.sort(values)
    except TypeError:
        classes = np.array(sorted(values, key=str), dtype=object)
    out = (ser.to_numpy() == classes[1]).astype(np.int64)
    if n_rows is not None and len(out) != n_rows:
        raise LengthMismatchError(
            f"X has {n_rows} rows but {name} has {len(out)}; pass X and {name} with the same rows."
        )
    return out, classes


def _one_column(y: Any, name: str) -> Any:
    """The target as one column: None is an error; a one-column DataFrame or a column
    vector (n, 1) is read as 1-D (the latter with scikit-learn's DataConversionWarning)."""
    if y is None:
        raise TargetError(f"this model requires {name} to be passed, but the target {name} "
                          "is None.")
    if isinstance(y, pd.DataFrame):
        if y.shape[1] != 1:
            raise TargetError(f"{name} must be one column, got {y.shape[1]} columns.")
        return y.iloc[:, 0]
    if not isinstance(y, pd.Series) and np.ndim(np.asarray(y, dtype=object)) == 2:
        arr = np.asarray(y)
        if arr.shape[1] != 1:
            raise TargetError(f"{name} must be one column (a 1d array), got shape "
                              f"{arr.shape}.")
        from sklearn.exceptions import DataConversionWarning
        warnings.warn("A column-vector y was passed when a 1d array was expected; it is "
                      "read as y.ravel().", DataConversionWarning, stacklevel=4)
        return arr[:, 0]
    return y


def check_numeric_y(y: Any, *, n_rows: int | None = None, name: str = "y") -> np.ndarray:
    """A regression target as float64: numeric, finite, not constant, no missing value."""
    y = _one_column(y, name)
    ser = y if isinstance(y, pd.Series) else pd.Series(np.asarray(y).ravel())
    if ser.isna().any():
        raise MissingValuesError(f"{name} has {int(ser.isna().sum())} missing values; drop "
                                 "those rows (a regression target cannot be imputed).")
    num = pd.to_numeric(ser, errors="coerce")
    if num.isna().any():
        bad = ser[num.isna()].astype(str).unique()[:3].tolist()
        raise TargetError(f"{name} must be numeric for a regression, got values like {bad}; "
                          "give a numeric column (or use classification).")
    out = num.to_numpy(dtype=np.float64)
    if not np.isfinite(out).all():
        raise TargetError(f"{name} has infinite values; fix or drop those rows.")
    if len(out) == 1:
        raise TargetError(f"{name} has 1 sample; a regression needs several rows.")
    if len(out) and np.ptp(out) == 0:
        raise TargetError(f"{name} is constant ({_py(out[0])!r} on every row): there is "
                          "nothing to predict.")
    if n_rows is not None and len(out) != n_rows:
        raise LengthMismatchError(
            f"X has {n_rows} rows but {name} has {len(out)}; pass X and {name} with the same rows.")
    return out


def _column_of(name: str) -> str:
    """``target 'num'`` -> ``num`` (the column a target message is about)."""
    parts = name.split("'")
    return parts[1] if len(parts) >= 3 else "COLUMN"


def join_columns(frame: pd.DataFrame) -> np.ndarray:
    """Intersectional labels: each row's values as text joined with ``_`` (vectorised)."""
    cols = [frame[c].astype(str).to_numpy(dtype=object) for c in frame.columns]
    out = cols[0].copy()
    for c in cols[1:]:
        out = out + "_" + c
    return out


def check_groups(groups: Any, *, n_rows: int, name: str = "sensitive_features") -> np.ndarray:
    """Return subgroup labels as an array of strings.

    A DataFrame with several columns is turned into intersectional labels
    (values joined with ``_``).  Unused pandas categories are an error: they
    name a subgroup with no training rows.
    """
    if groups is None:
        raise GroupError(f"{name} is required; pass one subgroup label per row.")
    if isinstance(groups, pd.DataFrame):
        if groups.shape[1] == 0:
            raise GroupError(f"{name} has no columns.")
        if groups.isna().any().any():
            col = groups.columns[groups.isna().any()][0]
            raise MissingValuesError(f"{name} column {_py(col)!r} has missing values; "
                                     "drop those rows or give them an explicit group.")
        for c in groups.columns:
            _check_unused_categories(groups[c], name=f"{name}[{c!r}]")
        labels = join_columns(groups)
    else:
        ser = groups if isinstance(groups, pd.Series) else pd.Series(np.asarray(groups).ravel())
        if np.asarray(groups).ndim > 1 and not isinstance(groups, pd.Series):
            arr = np.asarray(groups)
            if arr.ndim == 2 and arr.shape[1] == 1:
                ser = pd.Series(arr[:, 0])
            else:
                return check_groups(pd.DataFrame(arr), n_rows=n_rows, name=name)
        if ser.isna().any():
            raise MissingValuesError(f"{name} has {int(ser.isna().sum())} missing values; "
                                     "drop those rows or give them an explicit group.")
        _check_unused_categories(ser, name=name)
        labels = ser.astype(str).to_numpy()
    labels = np.asarray(labels, dtype=object).astype(str)
    if len(labels) != n_rows:
        raise LengthMismatchError(
            f"X has {n_rows} rows but {name} has {len(labels)}; pass them with the same rows."
        )
    return labels


def _check_unused_categories(ser: pd.Series, *, name: str) -> None:
    if isinstance(ser.dtype, pd.CategoricalDtype):
        unused = [c for c in ser.cat.categories if c not in set(ser.unique())]
        if unused:
            raise GroupError(
                f"subgroup {str(unused[0])!r} of {name} has no rows in the training data; "
                "drop it (Series.cat.remove_unused_categories()) or merge it with another group."
            )


def check_column(frame: pd.DataFrame, column: str, *, role: str) -> None:
    """Raise ColumnNotFoundError if ``column`` is not in ``frame``."""
    if column not in frame.columns:
        cols = ", ".join(map(str, list(frame.columns)[:12]))
        more = " ..." if frame.shape[1] > 12 else ""
        raise ColumnNotFoundError(
            f"{role} column {_py(column)!r} does not exist; available columns: {cols}{more}."
        )


def check_positive_int(value: Any, *, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {_py(value)!r}.")
    return int(value)


def check_fraction(value: Any, *, name: str, low: float = 0.0, high: float = 1.0,
                   inclusive_low: bool = False) -> float:
    ok = isinstance(value, (int, float, np.floating)) and not isinstance(value, bool)
    if ok:
        ok = (value >= low if inclusive_low else value > low) and value < high
    if not ok:
        lo = "[" if inclusive_low else "("
        raise ConfigError(f"{name} must be a number in {lo}{low}, {high}), got {_py(value)!r}.")
    return float(value)


def check_choice(value: Any, *, name: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {list(choices)}, got {_py(value)!r}.")
    return str(value)


def check_group_sizes(labels: np.ndarray, *, minimum: int, purpose: str,
                      hint: str | None = None) -> None:
    """Raise GroupError when a subgroup has < ``minimum`` rows; the message lists every
    subgroup's size and ``hint`` (e.g. cut points that would work)."""
    vals, counts = np.unique(labels, return_counts=True)
    small = [(v, c) for v, c in zip(vals, counts) if c < minimum]
    if small:
        v, c = min(small, key=lambda t: t[1])
        sizes = ", ".join(f"{g} {n}" for g, n in sorted(zip(vals, counts), key=lambda t: t[1]))
        raise GroupError(
            f"subgroup {str(v)!r} has {c} rows, fewer than the {minimum} needed {purpose} "
            f"(rows per subgroup: {sizes}); use coarser group bins or merge small groups"
            + (f" ({hint})." if hint else ".")
        )


def check_sensitive_frame(sensitive_features: Any, *, n_rows: int, who: str) -> pd.DataFrame:
    """One string column per sensitive attribute, each with at least two groups.

    A Series is one attribute; arrays are read column by column."""
    if sensitive_features is None:
        raise GroupError(f"{who} needs sensitive_features at fit time: one column per "
                         "sensitive attribute.")
    sf = sensitive_features
    frame = (sf.to_frame() if isinstance(sf, pd.Series) else
             sf if isinstance(sf, pd.DataFrame) else pd.DataFrame(np.asarray(sf)))
    if len(frame) != n_rows:
        raise LengthMismatchError(f"X has {n_rows} rows but sensitive_features has "
                                  f"{len(frame)}; pass them with the same rows.")
    if frame.isna().any().any():
        col = frame.columns[frame.isna().any()][0]
        raise MissingValuesError(f"sensitive attribute {_py(col)!r} has missing values; fill them "
                                 "(e.g. 'Unknown') or drop those rows.")
    for c in frame.columns:
        if frame[c].nunique() < 2:
            raise GroupError(f"sensitive attribute {str(c)!r} has a single group "
                             f"({_py(frame[c].iloc[0])!r}); a fairness term needs at least two.")
    return frame.reset_index(drop=True).astype(str)


def check_clusters(clusters: Any, *, n_rows: int, name: str = "clusters") -> np.ndarray:
    """Cluster labels (one categorical column) as strings; no missing labels."""
    if clusters is None:
        raise GroupError(f"{name} is required: one cluster label per row (e.g. the hospital "
                         "site or admission source).")
    if isinstance(clusters, pd.DataFrame):
        if clusters.shape[1] != 1:
            raise GroupError(f"{name} must be one column, got {clusters.shape[1]}.")
        clusters = clusters.iloc[:, 0]
    arr = pd.Series(np.asarray(clusters, dtype=object).ravel() if not isinstance(
        clusters, pd.Series) else clusters.to_numpy(dtype=object))
    if len(arr) != n_rows:
        raise LengthMismatchError(f"X has {n_rows} rows but {name} has {len(arr)}; pass one "
                                  "label per row.")
    missing = arr.isna().to_numpy() | (arr.astype(str).str.lower() == "nan").to_numpy()
    if missing.any():
        first = int(np.flatnonzero(missing)[0])
        raise MissingValuesError(f"{name} has {int(missing.sum())} missing label(s) (first at "
                                 f"row {first}); fill them (e.g. 'unknown') or drop the rows.")
    return arr.astype(str).to_numpy()


def check_sensitive_columns(groups: pd.DataFrame, names: Sequence[str], cohort: str
                            ) -> tuple[str, ...]:
    """The sensitive attributes of a fairness comparison: group columns of the cohort
    (default: all), each with at least two groups."""
    names = tuple(names) or tuple(groups.columns)
    for s in names:
        if s not in groups.columns:
            raise ConfigError(f"--sensitive {s!r} is not a group attribute of {cohort}; "
                              f"choose from {list(groups.columns)}.")
        if groups[s].nunique() < 2:
            raise GroupError(f"sensitive attribute {s!r} has a single group; a fairness "
                             "comparison needs at least two.")
    return names
