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
from .features import (FeatureSchema, check_exclusions, coerce_numeric, leak_warnings,
                       screen_columns)
from .reading import ReadOptions, apply_na_values, read_table

IMPUTE = ("median", "none")
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
                   exclude: Sequence[str], keep: Sequence[str]) -> None:
    check_column(frame, target.column, role="target")
    for c in spec.columns:
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


def _rows(mask: np.ndarray, k: int = 5) -> str:
    rows = np.flatnonzero(mask)
    return ", ".join(str(int(r) + 1) for r in rows[:k]) + (", ..." if len(rows) > k else "")


def load_tabular(data: str | os.PathLike | pd.DataFrame, *, target: str,
                 groups: Sequence[str] | GroupSpec, drop_group_columns: bool = False,
                 dropna: bool = False, task: str = "classification",
                 read: ReadOptions | None = None, exclude: Sequence[str] = (),
                 keep: Sequence[str] = (), impute: str = "median",
                 schema: FeatureSchema | None = None) -> Cohort:
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
        delimiter, header-less names, missing-value codes).
    exclude : columns never used as features (identifiers, leaks).
    keep : ID-like columns to keep as features anyway (they are excluded by default).
    impute : ``"median"`` (default): missing feature values stay NaN and every model fills
        them from its training rows (median plus a missing indicator); ``"none"``: a
        missing feature value is an error.
    schema : the feature encoding of a training file; given, this file is encoded the same
        way (external validation, prediction), its columns matched by name.

    Text columns become one 0/1 feature per value.  The cohort's ``meta`` records the
    reading options, the target expression, the excluded columns, the warnings and the
    feature schema.
    """
    check_choice(impute, name="impute", choices=IMPUTE)
    read = read or ReadOptions()
    tgt = Target.parse(target)
    if isinstance(data, pd.DataFrame):
        frame = apply_na_values(data.copy(), read)
    else:
        frame = read_table(data, read)
    frame.columns = [str(c) for c in frame.columns]
    spec = groups if isinstance(groups, GroupSpec) else GroupSpec.parse(groups)
    exclude, keep = [str(c) for c in exclude], [str(c) for c in keep]
    _check_columns(frame, tgt, spec, exclude, keep)
    n_raw = len(frame)
    if n_raw == 0:
        raise DatasetError("the data file has a header but no rows; check the file.")
    frame = coerce_numeric(frame.drop(columns=exclude))
    if dropna:
        frame = frame.dropna().reset_index(drop=True)
        if len(frame) == 0:
            raise DatasetError("no rows left after dropping the rows with missing values "
                               "(--dropna): every row has a gap; drop --dropna to impute "
                               "them instead.")
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
    else:
        y01, classes = check_binary_y(y_raw, name=f"target {tgt.expression!r}")
    group_frame = spec.transform(frame)
    for a in spec.attributes if schema is None else ():   # an external file may be one group
        labels = group_frame[a.column].unique()
        if len(labels) < 2:
            raise GroupError(f"group {a.column!r} puts every row in one subgroup "
                             f"({labels[0]!r}); {_group_hint(frame[a.column], a.column)}.")
    features = frame.drop(columns=[tgt.column] + (spec.columns if drop_group_columns else []))
    warnings_: list[str] = []
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
            "task": task, "positive_class": str(classes[1]), "rows_raw": n_raw,
            "rows": int(len(frame)), "group_spec": spec.describe(),
            "group_hint": "; ".join(_group_hint(frame[a.column], a.column)
                                    for a in spec.attributes),
            "read": read.to_dict(), "excluded": exclude, "excluded_auto": excluded_auto,
            "impute": impute, "missing_cells": int(X.isna().sum().sum()),
            "warnings": warnings_, "schema": schema.to_dict()}
    return Cohort(X=X.reset_index(drop=True), y=pd.Series(y01, name=tgt.column),
                  groups=group_frame.reset_index(drop=True), meta=meta)


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
    frame = apply_na_values(data.copy(), read) if isinstance(data, pd.DataFrame) else \
        read_table(data, read)
    frame.columns = [str(c) for c in frame.columns]
    spec = GroupSpec.parse(groups)
    known = set(known) | set(spec.columns)
    extra = [c for c in frame.columns if c not in set(schema.order) and c not in known]
    if extra:
        raise DatasetError(f"{_name(data)} has column(s) {extra[:8]} the model was not "
                           "trained with; drop them from the file (or check --names).")
    if len(frame) == 0:
        raise DatasetError(f"{_name(data)} has a header but no rows.")
    numeric = [c for c in schema.numeric if c in frame.columns]
    frame[numeric] = coerce_numeric(frame[numeric])        # junk cells: an error naming them
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


__all__ = ["IMPUTE", "NewData", "Target", "encode_new", "load_tabular", "read_table"]
