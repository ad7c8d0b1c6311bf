"""The user's own data: a delimited text / Parquet file or a DataFrame, as it comes.

Reading (:mod:`.reading`), the target (a column or an expression such as ``num>0``),
columns to leave out, screening for IDs, junk cells and leaks, and the feature encoding
(:mod:`.features`) all happen here; missing feature values are kept (NaN) for the models
to impute on each run's training rows.
"""
from __future__ import annotations

import operator
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .._validation import check_binary_y, check_choice, check_column
from ..errors import ConfigError, DatasetError, GroupError, MissingValuesError, TargetError
from ..groups import GroupSpec
from .cohort import Cohort
from .features import (FeatureSchema, check_exclusions, check_range, coerce_numeric,
                       duplicate_warnings, leak_warnings, screen_columns)
from .reading import ReadOptions, apply_na_values, read_table, strip_header

IMPUTE = ("median", "none")
#: ``--group-missing``: a missing group value is an error, drops its row, or is a level
GROUP_MISSING = ("error", "drop", "own")
_OPS = {">=": operator.ge, "<=": operator.le, "==": operator.eq, "!=": operator.ne,
        ">": operator.gt, "<": operator.lt}
_EXPR = re.compile(r"^\s*(.+?)\s*(>=|<=|==|!=|>|<)\s*(.+?)\s*$")


@dataclass(frozen=True)
class Target:
    """A target column, or an expression ``column OP value`` (OP one of ``> >= < <= == !=``)
    that makes a binary target (1 where it holds)."""

    column: str
    op: str | None = None
    value: str | None = None

    @classmethod
    def parse(cls, text: str) -> "Target":
        text = str(text or "").strip()
        if not text:
            raise ConfigError("--target is required with --data: name the outcome column "
                              "(or an expression such as 'num>0').")
        m = _EXPR.match(text)
        if m is None:
            return cls(text)
        col, op, value = m.groups()
        return cls(col.strip(), op, value.strip().strip("'\""))

    @property
    def expression(self) -> str:
        return self.column if self.op is None else f"{self.column}{self.op}{self.value}"

    def apply(self, frame: pd.DataFrame) -> pd.Series:
        """The target values (the expression's 0/1 result, or the column)."""
        s = frame[self.column]
        if self.op is None:
            return s
        if pd.api.types.is_numeric_dtype(s):
            try:
                value: object = float(self.value)
            except ValueError:
                raise ConfigError(f"target {self.expression!r}: {self.column!r} is numeric, "
                                  f"so compare it with a number, not {self.value!r}.") from None
        else:
            s, value = s.astype(str).str.strip(), self.value
        out = _OPS[self.op](s, value).astype(np.int64)
        return out.rename(self.column)


def _check_columns(frame: pd.DataFrame, target: Target, spec: GroupSpec,
                   exclude: Sequence[str], keep: Sequence[str],
                   patient: str | None = None) -> None:
    check_column(frame, target.column, role="target")
    for c in spec.columns:
        pieces = [p.strip() for p in c.split(",")]
        if c not in frame.columns and len(pieces) > 1 and all(p in frame.columns
                                                              for p in pieces):
            raise ConfigError(f"--group {c} names several columns; --group takes one attribute "
                              "each (commas separate cut points, as in age:50,60): repeat it, "
                              + " ".join(f"--group {p}" for p in pieces) + ".")
        check_column(frame, c, role="group")
    if target.column in spec.columns:
        raise ConfigError(f"{target.column!r} is both the target and a group column.")
    check_exclusions(frame, exclude, option="--exclude")
    check_exclusions(frame, keep, option="--keep")
    clash = [c for c in exclude if c == target.column or c in spec.columns]
    if clash:
        raise ConfigError(f"--exclude {clash[0]} names the target or a group column; those are "
                          "never features unless kept as groups (--drop-group-columns drops "
                          "group columns).")
    if patient is not None:
        check_column(frame, patient, role="patient id")
        if patient == target.column or patient in spec.columns:
            raise ConfigError(f"--patient {patient} names the target or a group column; give "
                              "the column that identifies the patient.")
        if patient in exclude:
            raise ConfigError(f"--patient {patient} is also given to --exclude; the patient "
                              "column is never a feature anyway: drop it from --exclude.")


def expand_columns(items: Sequence[str], columns: Sequence[str], *, option: str
                   ) -> list[str]:
    """The column names of a list option given repeatedly and/or comma-separated
    (``--exclude a,b --exclude c``); an item that is itself a column name (with a comma)
    is kept whole.  An item naming nothing (``','``) is an error."""
    have = {str(c) for c in columns}
    out: list[str] = []
    for item in items:
        item = str(item).strip()
        names = [item] if item in have else [p.strip() for p in item.split(",") if p.strip()]
        if not names:
            raise ConfigError(f"{option} {item!r} names no column; give e.g. {option} a,b "
                              "(or repeat the option), or leave it out.")
        out += [n for n in names if n not in out]
    return out


def _rows(mask: np.ndarray, k: int = 5) -> str:
    rows = np.flatnonzero(mask)
    return ", ".join(str(int(r) + 1) for r in rows[:k]) + (", ..." if len(rows) > k else "")


def _missing_groups(frame: pd.DataFrame, spec: GroupSpec, policy: str, warnings_: list[str]
                    ) -> pd.DataFrame:
    """Apply ``--group-missing`` to the rows whose group value is missing: an error naming
    the option (``error``), those rows left out with a note (``drop``), or nothing here
    (``own``: :meth:`GroupSpec.transform` labels them ``COLUMN=missing``)."""
    gaps = {c: frame[c].isna().to_numpy() for c in spec.columns}
    gaps = {c: m for c, m in gaps.items() if m.any()}
    if not gaps or policy == "own":
        return frame
    col, first = next(iter(gaps.items()))
    if policy == "error":
        raise MissingValuesError(
            f"group column {col!r} is missing on {int(first.sum())} row(s) (rows "
            f"{_rows(first)}); pass --group-missing drop to leave those rows out, or "
            "--group-missing own to make them a subgroup of their own (--dropna would drop "
            "every row with any missing value).")
    rows = np.logical_or.reduce(list(gaps.values()))
    kept = frame.loc[~rows].reset_index(drop=True)
    if len(kept) == 0:
        raise DatasetError("no rows left after leaving out the rows whose group value is "
                           "missing (--group-missing drop); use --group-missing own.")
    per = ", ".join(f"{c}: {int(m.sum())}" for c, m in gaps.items())
    warnings_.append(f"{int(rows.sum())} row(s) with a missing group value ({per}; rows "
                     f"{_rows(rows)}) were left out (--group-missing drop); {len(kept)} rows "
                     "remain.")
    return kept


def _value_key(v: object) -> object:
    """A target value as compared across files: a number by value (``1`` == ``1.0``),
    text stripped."""
    if isinstance(v, (bool, np.bool_)):
        return float(v)
    if isinstance(v, str) and v.strip().lower() in ("true", "false"):
        return float(v.strip().lower() == "true")       # classes stored as text
    try:
        x = float(v)                                   # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(v).strip()
    return x if np.isfinite(x) else str(v).strip()


def _map_target(y_raw: pd.Series, classes: Sequence[str], *, name: str, column: str
                ) -> tuple[np.ndarray, np.ndarray]:
    """The 0/1 target of an external file whose values are mapped BY VALUE onto the
    training file's two ``classes`` (negative, positive); a value the training file
    does not have is an error (never a guess by sort order)."""
    keys = [_value_key(c) for c in classes]
    if keys[0] == keys[1]:
        raise TargetError(f"the training target's classes {list(classes)} are ambiguous; "
                          "recode the target.")
    got = y_raw.map(_value_key)
    unknown = sorted({str(v) for v, k in zip(y_raw, got) if k not in keys})
    if unknown:
        raise TargetError(
            f"the target {column!r} of {name} takes the value(s) {unknown[:5]}, which the "
            f"training file's target (values {list(classes)}) does not; recode the file to "
            f"the training values, or pass --test-target '{column}==VALUE' with VALUE the "
            f"test file's value that means {classes[1]!r} (the training's positive class).")
    y01 = (got == keys[1]).to_numpy(dtype=np.int64)
    if len(np.unique(y01)) < 2:
        raise TargetError(f"the target {column!r} of {name} has a single class "
                          f"({classes[int(y01[0])]!r}); an external file needs both classes.")
    return y01, np.asarray(list(classes), dtype=object)


def load_tabular(data: str | os.PathLike | pd.DataFrame, *, target: str,
                 groups: Sequence[str] | GroupSpec, drop_group_columns: bool = False,
                 dropna: bool = False, task: str = "classification",
                 read: ReadOptions | None = None, exclude: Sequence[str] = (),
                 keep: Sequence[str] = (), impute: str = "median",
                 schema: FeatureSchema | None = None, group_missing: str = "error",
                 patient: str | None = None,
                 target_classes: Sequence[str] | None = None) -> Cohort:
    """Build a Cohort from the user's table.

    Parameters
    ----------
    data : file path (delimited text or Parquet) or DataFrame.
    target : the outcome column, or an expression making a binary outcome (``"num>0"``;
        operators ``> >= < <= == !=``).
    groups : group specs (``["age:60", "sex"]``) or a :class:`GroupSpec`; numeric
        attributes take cut points, categorical ones are used as they are.
    drop_group_columns : remove the group columns from the features.
    dropna : drop every row with a missing value (instead of imputing).
    task : ``"classification"`` (binary target, coded 0/1) or ``"regression"``.
    read : how to read the file (:class:`~noharm.datasets.reading.ReadOptions`:
        delimiter, header-less names, missing-value codes, decimal mark).
    exclude : columns never used as features (identifiers, leaks); an item may list
        several, comma-separated (``"id,visit"``).
    keep : ID-like columns to keep as features anyway (they are excluded by default);
        comma-separated like ``exclude``.
    impute : ``"median"`` (default): missing feature values stay NaN and every model fills
        them from its training rows (median plus a missing indicator); ``"none"``: a
        missing feature value is an error.
    schema : the feature encoding of a training file; given, this file is encoded the same
        way (external validation, prediction), its columns matched by name.
    group_missing : a row whose group value is missing: ``"error"`` (default, naming the
        other choices), ``"drop"`` (leave those rows out, with a warning saying how many)
        or ``"own"`` (a subgroup of its own, ``COLUMN=missing``).
    patient : the column identifying the patient: a patient's rows are never split
        between training and test (the cohort's ``split_by``); not a feature.
    target_classes : the training file's two target values (``meta["target_classes"]``
        of its cohort): this file's target is mapped onto them BY VALUE, and a value the
        training file does not have is an error (external validation).

    Text columns become one 0/1 feature per value.  Spaces around header names are
    removed (with a warning).  The cohort's ``meta`` records the reading options, the
    target expression, the excluded columns, the warnings and the feature schema.
    """
    check_choice(impute, name="impute", choices=IMPUTE)
    check_choice(group_missing, name="group_missing", choices=GROUP_MISSING)
    read = read or ReadOptions()
    tgt = Target.parse(target)
    warnings_: list[str] = []
    if isinstance(data, pd.DataFrame):
        frame = apply_na_values(strip_header(data.copy(), warnings_), read)
    else:
        frame = read_table(data, read, notes=warnings_)
    spec = groups if isinstance(groups, GroupSpec) else GroupSpec.parse(groups)
    exclude = expand_columns(exclude, frame.columns, option="--exclude")
    keep = expand_columns(keep, frame.columns, option="--keep")
    patient = None if patient is None else str(patient).strip()
    _check_columns(frame, tgt, spec, exclude, keep, patient)
    n_raw = len(frame)
    if n_raw == 0:
        raise DatasetError("the data file has a header but no rows; check the file.")
    if schema is None:
        warnings_ += duplicate_warnings(frame, ids=[patient] if patient else ())
    frame = coerce_numeric(frame.drop(columns=exclude), decimal=read.decimal)
    check_range(frame, [c for c in frame.columns if c != patient and (
        c != tgt.column or task == "regression")], what=_name(data))
    if patient is not None and frame[patient].isna().any():
        gap = frame[patient].isna().to_numpy()
        raise MissingValuesError(f"the patient id {patient!r} is missing on "
                                 f"{int(gap.sum())} row(s) (rows {_rows(gap)}); fill them in "
                                 "the file (every row needs its patient).")
    if dropna:
        frame = frame.dropna().reset_index(drop=True)
        if len(frame) == 0:
            raise DatasetError("no rows left after dropping the rows with missing values "
                               "(--dropna): every row has a gap; drop --dropna to impute "
                               "them instead.")
    frame = _missing_groups(frame, spec, group_missing, warnings_)
    missing_y = frame[tgt.column].isna().to_numpy()
    if missing_y.any():
        raise MissingValuesError(
            f"target {tgt.column!r} is missing on {int(missing_y.sum())} row(s) (rows "
            f"{_rows(missing_y)}); remove those rows from the file, or pass --dropna to "
            "drop every row with a missing value.")
    y_raw = tgt.apply(frame)
    if task == "regression":
        if tgt.op is not None:
            raise TargetError(f"target {tgt.expression!r} is an expression (0/1); a "
                              "regression target is a numeric column.")
        try:
            y01 = pd.to_numeric(y_raw).to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            raise TargetError(f"target {tgt.column!r} must be numeric for --task regression."
                              ) from None
        classes = np.array([np.nan, np.nan])
    elif target_classes is not None and tgt.op is None:
        y01, classes = _map_target(y_raw, [str(c) for c in target_classes], name=_name(data),
                                   column=tgt.column)
    else:
        y01, classes = check_binary_y(y_raw, name=f"target {tgt.expression!r}")
        if target_classes is not None:          # an expression: its 1 is the positive class
            classes = np.asarray([str(c) for c in target_classes], dtype=object)
    group_frame = spec.transform(frame, "own" if group_missing == "own" else "error")
    for a in spec.attributes if schema is None else ():   # an external file may be one group
        labels = group_frame[a.column].unique()
        if len(labels) < 2:
            raise GroupError(f"group {a.column!r} puts every row in one subgroup "
                             f"({labels[0]!r}); {_group_hint(frame[a.column], a.column)}.")
    split_by = None if patient is None else frame[patient].reset_index(drop=True)
    features = frame.drop(columns=[tgt.column] + (spec.columns if drop_group_columns else [])
                          + ([patient] if patient is not None else []))
    if schema is None:
        screening = screen_columns(features, keep=keep)
        features = features.drop(columns=screening.drop)
        warnings_ += screening.warnings
        if features.shape[1] == 0:
            raise ConfigError("no feature columns left; keep the group columns as features "
                              "or exclude fewer columns.")
        schema = FeatureSchema.infer(features)
        excluded_auto = screening.drop
    else:
        known = set(schema.order) | {tgt.column, *spec.columns}
        extra = [c for c in features.columns if c not in known]
        if extra:
            raise DatasetError(
                f"the file has column(s) {extra[:8]} the model was not trained with; "
                "--exclude them (or give the file the training columns only).")
        excluded_auto = []
    X = schema.transform(features, what=_name(data))
    if X.isna().any().any():
        if impute == "none":
            cols = [str(c) for c in X.columns[X.isna().any()]][:5]
            raise MissingValuesError(
                f"missing values in columns {cols}; pass --impute median (fills them on each "
                "run's training rows, with a missing indicator) or --dropna.")
    if task != "regression":
        warnings_ += leak_warnings(X, y01)
    meta = {"name": _name(data), "target": tgt.column, "target_expression": tgt.expression,
            "task": task, "positive_class": str(classes[1]),
            "target_classes": None if task == "regression" else [str(c) for c in classes],
            "rows_raw": n_raw, "rows": int(len(frame)), "group_spec": spec.describe(),
            "group_missing": group_missing, "patient": patient,
            "group_hint": "; ".join(_group_hint(frame[a.column], a.column)
                                    for a in spec.attributes),
            "read": read.to_dict(), "excluded": exclude, "excluded_auto": excluded_auto,
            "impute": impute, "missing_cells": int(X.isna().sum().sum()),
            "warnings": warnings_, "schema": schema.to_dict()}
    return Cohort(X=X.reset_index(drop=True), y=pd.Series(y01, name=tgt.column),
                  groups=group_frame.reset_index(drop=True), meta=meta, split_by=split_by)


@dataclass
class NewData:
    """A file to predict on, encoded like the training file."""

    X: pd.DataFrame
    subgroups: np.ndarray | None        # None when a group column is absent
    missing_groups: list[str]
    passthrough: pd.DataFrame           # excluded columns present (IDs) for the output


def encode_new(data: str | os.PathLike | pd.DataFrame, *, schema: FeatureSchema,
               groups: Sequence[str], read: ReadOptions | None = None,
               known: Sequence[str] = ()) -> NewData:
    """Encode a new file with a training ``schema``: its feature columns matched by name
    (any order); a column that is neither a feature nor in ``known`` (target, groups,
    excluded columns) is an error naming it.  Group labels come from ``groups`` (the
    training specs) when every group column is present."""
    read = read or ReadOptions()
    frame = apply_na_values(strip_header(data.copy()), read) if isinstance(
        data, pd.DataFrame) else read_table(data, read)
    spec = GroupSpec.parse(groups)
    known = set(known) | set(spec.columns)
    extra = [c for c in frame.columns if c not in set(schema.order) and c not in known]
    if extra:
        raise DatasetError(f"{_name(data)} has column(s) {extra[:8]} the model was not "
                           "trained with; drop them from the file (or check --names).")
    if len(frame) == 0:
        raise DatasetError(f"{_name(data)} has a header but no rows.")
    numeric = [c for c in schema.numeric if c in frame.columns]
    frame[numeric] = coerce_numeric(frame[numeric], decimal=read.decimal)   # junk: an error
    X = schema.transform(frame, what=_name(data))
    absent = [c for c in spec.columns if c not in frame.columns]
    sub = None if absent else spec.labels(frame).to_numpy().astype(str)
    keep = [c for c in frame.columns if c in known and c not in schema.order
            and c not in spec.columns]
    return NewData(X.reset_index(drop=True), sub, absent,
                   frame[keep].reset_index(drop=True))


def _name(data) -> str:
    return Path(data).name if not isinstance(data, pd.DataFrame) else "dataframe"


def _group_hint(col: pd.Series, name: str) -> str:
    """A cut that would split a numeric attribute in two halves, or the values seen."""
    if pd.api.types.is_numeric_dtype(col):
        v = col.dropna().to_numpy(dtype=float)
        if len(v) == 0:
            return f"{name} has no values."
        med = float(np.median(v))
        above = v[v > med]
        cut = med if (v < med).any() or not len(above) else float(above.min())
        cut = int(cut) if float(cut).is_integer() else round(cut, 3)
        return (f"{name} ranges from {_num(v.min())} to {_num(v.max())}; e.g. --group "
                f"{name}:{cut} splits it at the median")
    vals = col.astype(str).value_counts()
    return f"{name} takes the values " + ", ".join(f"{k} ({n})" for k, n in
                                                    vals.head(8).items())


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.4g}"


__all__ = ["GROUP_MISSING", "IMPUTE", "NewData", "Target", "encode_new", "expand_columns",
           "load_tabular", "read_table"]
