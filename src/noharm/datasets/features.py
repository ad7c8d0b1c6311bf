"""From a raw table to model features, the same way for training, external and new data.

:class:`FeatureSchema` is inferred once from the training file (which columns are
numbers, which are categories and their values) and then applied to any other file, so
an external-validation or prediction file gets exactly the training features: a missing
or unknown column, or a category never seen in training, is an error naming it.

:func:`screen_columns` finds what a clinical file hides: junk cells in a numeric column
(an error naming them), numbers written with decimal commas (an error naming
``--decimal ,``), ID-like columns (excluded, with a warning), empty and mostly empty
columns, and single features that predict the target almost perfectly (possible leaks,
named in a warning).  :func:`duplicate_warnings` names copied rows and patient ids that
repeat; :func:`check_range` refuses a value too large to compute with.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import ColumnNotFoundError, DatasetError, FeatureMismatchError

#: A numeric-looking column with at most this share of non-numeric cells is "junk cells"
JUNK_SHARE = 0.2
#: A single feature with AUROC at least this on its own is named as a possible leak
LEAK_AUROC = 0.9
#: Minimum rows before a column unique per row is called ID-like
ID_MIN_ROWS = 20
#: A categorical column with more values than this gets a warning (one feature each)
MANY_CATEGORIES = 50
#: A column with more than this share missing gets a warning
MOSTLY_MISSING = 0.5
#: The largest magnitude a value may have: features are computed in float32, where a
#: larger value becomes infinite (a regression target is held to it too, so its squared
#: errors stay finite in float64)
MAX_ABS = float(np.finfo(np.float32).max)
#: A cell written as a number with a decimal comma (``0,5``, ``-1,25``, ``3,1e-2``)
_DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+(?:[eE][+-]?\d+)?")
#: A cell with thousands separators only (``1,250``, ``12,000,000``)
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+")


@dataclass
class FeatureSchema:
    """Numeric columns (kept as numbers, NaN = missing) and categorical columns (one 0/1
    feature per training value, ``col_value``; a missing category is all zeros)."""

    numeric: list[str] = field(default_factory=list)
    categorical: dict[str, list[str]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    @classmethod
    def infer(cls, frame: pd.DataFrame) -> "FeatureSchema":
        numeric, categorical = [], {}
        for c in frame.columns:
            s = frame[c]
            if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
                numeric.append(str(c))
            else:
                categorical[str(c)] = sorted(s.dropna().astype(str).str.strip().unique())
        return cls(numeric, categorical, [str(c) for c in frame.columns])

    @property
    def columns(self) -> list[str]:
        """The feature names, in order."""
        out = []
        for c in self.order:
            if c in self.categorical:
                out += [f"{c}_{v}" for v in self.categorical[c]]
            else:
                out.append(c)
        return out

    def transform(self, frame: pd.DataFrame, *, what: str = "the data") -> pd.DataFrame:
        """The float32 feature frame of ``frame`` (columns matched by name)."""
        missing = [c for c in self.order if c not in frame.columns]
        if missing:
            raise FeatureMismatchError(
                f"{what} lacks the feature column(s) {missing[:8]} the model was trained "
                "with; give a file with the same columns (any order; --names for a file "
                "without a header).")
        parts = {}
        for c in self.order:
            s = frame[c]
            if c in self.categorical:
                known = self.categorical[c]
                vals = s.astype(str).str.strip().where(s.notna())
                unseen = sorted(set(vals.dropna()) - set(known))
                if unseen:
                    raise FeatureMismatchError(
                        f"{what}: column {c!r} has value(s) {unseen[:5]} never seen in "
                        f"training (known: {known[:8]}); recode them, or mark them missing "
                        f"with --na-values {c}={unseen[0]}.")
                for v in known:
                    parts[f"{c}_{v}"] = (vals == v).astype(np.float32).to_numpy()
            else:
                num = s if pd.api.types.is_numeric_dtype(s) else _to_number(s, c, what)
                parts[c] = num.astype(np.float32).to_numpy()
        return pd.DataFrame(parts, index=frame.index)

    def to_dict(self) -> dict:
        return {"numeric": list(self.numeric), "categorical": dict(self.categorical),
                "order": list(self.order)}

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureSchema":
        return cls(list(d["numeric"]), {k: list(v) for k, v in d["categorical"].items()},
                   list(d["order"]))


def _to_number(s: pd.Series, col: str, what: str) -> pd.Series:
    num = pd.to_numeric(s, errors="coerce")
    bad = num.isna() & s.notna()
    if bad.any():
        raise DatasetError(f"{what}: numeric column {col!r} has non-numeric cells "
                           f"{_cells(s, bad)}; mark them missing with --na-values.")
    return num


def _cells(s: pd.Series, bad: pd.Series, k: int = 5) -> str:
    rows = np.flatnonzero(bad.to_numpy())
    shown = ", ".join(f"row {int(r) + 1}: {str(s.iloc[r])!r}" for r in rows[:k])
    return f"({shown}{', ...' if len(rows) > k else ''}; {len(rows)} in all)"


_MISSING_WORDS = {"na", "n/a", "nan", "null", "none", "missing", "unknown", "?", "-", "--",
                  ".", ""}


def _missing_like(v: str) -> bool:
    """A cell that reads as a missing-value code (``?``, ``NA``, ``-``, ``.``)."""
    v = str(v).strip().lower()
    return v in _MISSING_WORDS or (len(v) <= 2 and not any(ch.isalnum() for ch in v))


def _as_numbers(text: pd.Series, decimal: str) -> pd.Series:
    """``text`` read as numbers (NaN where it is not one); with ``decimal=","`` the comma
    is the decimal mark and a cell with a dot is not a number (``1.234`` would be a
    thousands separator there)."""
    if decimal == ",":
        text = text.where(~text.str.contains(".", regex=False, na=False)).str.replace(",", ".",
                                                                           regex=False)
    return pd.to_numeric(text, errors="coerce")


def _decimal_comma_error(name: str, text: pd.Series) -> DatasetError | None:
    """The error of a text column whose cells are numbers with decimal commas (``0,5``):
    read as text they would become one feature (or one subgroup) per value."""
    looks = text.str.fullmatch(_DECIMAL_COMMA)
    n_comma = int(looks.sum())
    if n_comma == 0:
        return None
    swapped = pd.to_numeric(text.str.replace(",", ".", regex=False), errors="coerce")
    rest = text[swapped.isna()]
    if not (rest.map(_missing_like).all() or n_comma >= 0.5 * len(text)):
        return None
    examples = ", ".join(repr(v) for v in list(dict.fromkeys(text[looks]))[:3])
    thousands = bool(text[looks].str.fullmatch(_THOUSANDS).all())
    return DatasetError(
        f"column {name!r} holds numbers written with a decimal comma ({examples}; {n_comma} "
        "cell(s)), which would be read as text (one feature or subgroup per value); pass "
        "--decimal , to read them as numbers (a European export usually also needs --sep "
        "';')" + ("; if the commas separate thousands instead, remove them from the file"
                  if thousands else "") + ".")


def _decimal_point_error(name: str, text: pd.Series) -> DatasetError | None:
    """The error of a text column, in a file read with ``--decimal ,``, whose cells are
    numbers with a dot (``1.5``, or ``1.234`` with a thousands dot): neither reading is
    safe to guess."""
    dotted = text.str.contains(".", regex=False, na=False)
    num = pd.to_numeric(text, errors="coerce")
    if not dotted.any() or not (num.notna() | text.map(_missing_like)).all():
        return None
    examples = ", ".join(repr(v) for v in list(dict.fromkeys(text[dotted]))[:3])
    return DatasetError(
        f"column {name!r} holds numbers written with a dot ({examples}) although --decimal , "
        "says the decimal mark is a comma; if the dot is a decimal point, this file (or "
        "column) is not a decimal-comma export: drop --decimal ,; if the dots separate "
        "thousands, remove them from the file.")


def coerce_numeric(frame: pd.DataFrame, decimal: str = ".") -> pd.DataFrame:
    """Text columns whose cells are all numbers become numeric; a column of numbers with a
    few junk cells (at most 20 %, or only missing-value codes such as ``?``) is an error
    naming them and the fix (``--na-values``).

    With ``decimal="."`` a column of numbers written with decimal commas (``0,5``) is an
    error naming ``--decimal ,``; with ``decimal=","`` such cells are read as numbers."""
    frame = frame.copy()
    for c in frame.columns:
        s = frame[c]
        if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            continue
        observed = s.dropna()
        if observed.empty:
            continue
        text = observed.astype(str).str.strip()
        num = _as_numbers(text, decimal)
        n_bad = int(num.isna().sum())
        if decimal == "." and n_bad:
            err = _decimal_comma_error(str(c), text)
            if err is not None:
                raise err
        if decimal == "," and n_bad:
            err = _decimal_point_error(str(c), text)
            if err is not None:
                raise err
        if n_bad == 0:
            frame[c] = _as_numbers(s.astype(str).str.strip().where(s.notna()), decimal)
        elif n_bad < len(observed) and (n_bad <= JUNK_SHARE * len(observed) or all(
                _missing_like(v) for v in set(text[num.isna()]))):
            bad = s.notna() & _as_numbers(s.astype(str).str.strip(), decimal).isna()
            codes = sorted(set(text[num.isna()]))[:5]
            raise DatasetError(
                f"column {str(c)!r} holds numbers except for {n_bad} cell(s) "
                f"{_cells(s, bad)}; if those mean 'missing' pass --na-values "
                + " ".join(f"'{v}'" for v in codes)
                + f" (or --na-values '{c}={codes[0]}' for this column only); otherwise fix "
                "the cells.")
    return frame


def _single_auroc(x: np.ndarray, y: np.ndarray) -> float:
    """AUROC of one feature alone (either direction), on the rows where it is observed."""
    from scipy.stats import rankdata
    ok = ~np.isnan(x)
    x, y = x[ok], y[ok]
    n1 = int(y.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0 or len(np.unique(x)) < 2:
        return 0.5
    r = rankdata(x)
    auc = (r[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)
    return float(max(auc, 1 - auc))


@dataclass
class Screening:
    """What :func:`screen_columns` found: columns to drop and warnings to show."""

    drop: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def screen_columns(frame: pd.DataFrame, *, keep: Sequence[str] = ()) -> Screening:
    """ID-like, empty and mostly-missing columns of the feature part of a raw table."""
    out = Screening()
    n = len(frame)
    keep = set(keep)
    for c in frame.columns:
        s = frame[c]
        name = str(c)
        if s.isna().all():
            out.drop.append(name)
            out.warnings.append(f"column {name!r} is empty (every cell missing): dropped.")
            continue
        if name not in keep and n >= ID_MIN_ROWS and s.notna().all() and s.nunique() == n:
            integer_like = pd.api.types.is_integer_dtype(s) or (
                pd.api.types.is_float_dtype(s) and np.all(np.mod(s.to_numpy(), 1) == 0))
            if not pd.api.types.is_numeric_dtype(s) or integer_like:
                out.drop.append(name)
                out.warnings.append(
                    f"column {name!r} looks like an ID (a different value on every row): "
                    f"excluded; pass --keep {name} to use it as a feature.")
                continue
        share = float(s.isna().mean())
        if share > MOSTLY_MISSING:
            out.warnings.append(f"column {name!r} is {share:.0%} missing: imputed (median and "
                                f"a missing indicator); --exclude {name} to leave it out.")
        if name in frame.columns and not (pd.api.types.is_numeric_dtype(s)
                                          or pd.api.types.is_bool_dtype(s)):
            k = s.nunique()
            if k > MANY_CATEGORIES:
                out.warnings.append(f"column {name!r} is text with {k} different values: "
                                    f"{k} one-hot features; --exclude {name} if it is an "
                                    "identifier or free text.")
    return out


def leak_warnings(X: pd.DataFrame, y: np.ndarray, threshold: float = LEAK_AUROC
                  ) -> list[str]:
    """One warning per feature whose AUROC alone is at least ``threshold``."""
    out = []
    y = np.asarray(y)
    for c in X.columns:
        auc = _single_auroc(X[c].to_numpy(dtype=np.float64), y)
        if auc >= threshold:
            out.append(f"feature {str(c)!r} alone predicts the target with AUROC {auc:.2f}: "
                       f"a possible leak (known only after the outcome?); --exclude it if "
                       "so.")
    return out


#: Name words of a column holding a patient (or stay, admission) id
_ID_WORDS = {"id", "nbr", "mrn", "patient", "subject", "patientid", "subjectid", "patid"}


def _id_name(name: str) -> bool:
    """``patient_id``, ``PatientID``, ``subject``, ``mrn``, ``patient_nbr``: a name that
    says the column identifies someone."""
    words = re.sub(r"([a-z])([A-Z])", r"\1 \2", str(name)).lower()
    words = [w for w in re.split(r"[^a-z0-9]+", words) if w]
    return bool(words) and words[-1] in _ID_WORDS


def duplicate_warnings(frame: pd.DataFrame, *, ids: Sequence[str] = ()) -> list[str]:
    """Warnings about rows a split could put on both sides: exact copies of an earlier row,
    and ids that repeat (in ``ids`` or in a column named like a patient id with many
    values) - a patient's rows in both the training and the test part inflate the test
    scores."""
    out = []
    n = len(frame)
    copies = frame.duplicated(keep="first").to_numpy()
    if copies.any() and not ids:        # with a patient id, a copy stays with its patient
        first = frame.duplicated(keep=False).to_numpy() & ~copies
        k = int(copies.sum())
        out.append(f"{k} row(s) are exact copies of an earlier row (e.g. row "
                   f"{int(np.flatnonzero(copies)[0]) + 1} repeats row "
                   f"{int(np.flatnonzero(first)[0]) + 1}): a copy and its original may "
                   "land on both sides of a split (training and test), which inflates the "
                   "test scores; remove the copies from the file unless they are different "
                   "patients, or pass --patient COLUMN to keep each patient's rows together.")
    for c in frame.columns:
        s = frame[c]
        if not _id_name(c) or s.isna().any() or str(c) in ids:
            continue
        if pd.api.types.is_float_dtype(s) and not np.all(np.mod(s.to_numpy(), 1) == 0):
            continue
        k = int(s.nunique())
        if n / 10 < k < n:
            out.append(f"column {str(c)!r} looks like a patient id and repeats ({k} ids on "
                       f"{n} rows): one patient's rows may land on both sides of a split "
                       "(training and test), which inflates the test scores; pass --patient "
                       f"{c} to keep each patient's rows in one part.")
    return out


def check_range(frame: pd.DataFrame, columns: Sequence[str], *, what: str = "the data"
                ) -> None:
    """A :class:`~noharm.errors.DatasetError` naming the first cell of ``columns`` that is
    infinite or larger in magnitude than :data:`MAX_ABS` (it would become infinite in the
    models' float32 and its squared error would overflow)."""
    for c in columns:
        s = frame[c]
        if not (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)):
            continue
        v = s.to_numpy(dtype=np.float64, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            bad = np.isinf(v) | (np.abs(v) > MAX_ABS)
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            value = repr(float(v[r]))
            more = f"; {int(bad.sum())} cells in all" if bad.sum() > 1 else ""
            raise DatasetError(
                f"{what}: column {str(c)!r} has a value too large to compute with (row "
                f"{r + 1}: {value}{more}); values must lie within +-{MAX_ABS:.3g} (the "
                "float32 range the models compute in): fix the cell, or mark it missing "
                f"with --na-values '{c}={value}'.")


def check_exclusions(frame: pd.DataFrame, exclude: Sequence[str], *, option: str) -> None:
    unknown = [c for c in exclude if c not in frame.columns]
    if unknown:
        cols = ", ".join(map(str, list(frame.columns)[:12]))
        raise ColumnNotFoundError(f"{option} names column(s) {unknown} that the data does not "
                                  f"have; available columns: {cols}.")


__all__ = ["MAX_ABS", "FeatureSchema", "Screening", "check_exclusions", "check_range",
           "coerce_numeric", "duplicate_warnings", "leak_warnings", "screen_columns"]
