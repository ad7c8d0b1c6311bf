"""From a raw table to model features, the same way for training, external and new data.

:class:`FeatureSchema` is inferred once from the training file (which columns are
numbers, which are categories and their values) and then applied to any other file, so
an external-validation or prediction file gets exactly the training features: a missing
or unknown column, or a category never seen in training, is an error naming it.

:func:`screen_columns` finds what a clinical file hides: junk cells in a numeric column
(an error naming them), ID-like columns (excluded, with a warning), empty and mostly
empty columns, and single features that predict the target almost perfectly (possible
leaks, named in a warning).
"""
from __future__ import annotations

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


def coerce_numeric(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns whose cells are all numbers become numeric; a column of numbers with a
    few junk cells (at most 20 %, or only missing-value codes such as ``?``) is an error
    naming them and the fix (``--na-values``)."""
    frame = frame.copy()
    for c in frame.columns:
        s = frame[c]
        if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            continue
        observed = s.dropna()
        if observed.empty:
            continue
        text = observed.astype(str).str.strip()
        num = pd.to_numeric(text, errors="coerce")
        n_bad = int(num.isna().sum())
        if n_bad == 0:
            frame[c] = pd.to_numeric(s.astype(str).str.strip().where(s.notna()),
                                     errors="coerce")
        elif n_bad < len(observed) and (n_bad <= JUNK_SHARE * len(observed) or all(
                _missing_like(v) for v in set(text[num.isna()]))):
            bad = s.notna() & pd.to_numeric(s.astype(str).str.strip(), errors="coerce").isna()
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


def check_exclusions(frame: pd.DataFrame, exclude: Sequence[str], *, option: str) -> None:
    unknown = [c for c in exclude if c not in frame.columns]
    if unknown:
        cols = ", ".join(map(str, list(frame.columns)[:12]))
        raise ColumnNotFoundError(f"{option} names column(s) {unknown} that the data does not "
                                  f"have; available columns: {cols}.")


__all__ = ["FeatureSchema", "Screening", "check_exclusions", "coerce_numeric",
           "leak_warnings", "screen_columns"]
