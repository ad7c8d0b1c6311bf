"""GroupSpec: attribute columns + binning -> intersectional subgroup labels.

``GroupSpec.parse(["age:60:young,old", "sex"])`` describes two attributes: age
cut at 60 into ``young`` (< 60) and ``old`` (>= 60), and sex used as it is.  A
row's subgroup label joins its attribute labels with ``_`` (``old_female``).

A missing group value is an error unless ``missing="own"``: then it is a level of its
own, ``COLUMN=missing`` (``sex=missing``).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._validation import check_column
from .errors import ConfigError, MissingValuesError

#: What to do with a row whose group value is missing: raise, or give it its own level
MISSING_POLICIES = ("error", "own")


def missing_label(column: str) -> str:
    """The level of a missing group value with ``missing="own"``."""
    return f"{column}=missing"


@dataclass(frozen=True)
class Attribute:
    """One group attribute.

    Parameters
    ----------
    column : the column in the data.
    cuts : cut points for a numeric column (bins are ``[-inf, c1), [c1, c2), ... [ck, inf)``);
        ``None`` uses the values as they are.
    labels : names of the bins (``len(cuts) + 1`` of them), or a mapping value -> name for
        categorical columns.  Defaults: ``age<60`` / ``age>=60`` for cuts, the value itself
        for strings, ``col=value`` for numbers.
    """

    column: str
    cuts: tuple[float, ...] | None = None
    labels: tuple[str, ...] | Mapping | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if self.cuts is not None:
            cuts = tuple(float(c) for c in self.cuts)
            if not all(np.isfinite(cuts)):
                raise ConfigError(f"cut points of {self.column!r} must be finite numbers, got "
                                  f"{list(cuts)}.")
            if list(cuts) != sorted(set(cuts)):
                raise ConfigError(f"cut points of {self.column!r} must be strictly increasing, "
                                  f"got {list(cuts)}.")
            object.__setattr__(self, "cuts", cuts)
            if self.labels is not None and len(self.labels) != len(cuts) + 1:
                raise ConfigError(
                    f"attribute {self.column!r} has {len(cuts)} cut point(s), so it needs "
                    f"{len(cuts) + 1} labels, got {list(self.labels)}.")
            if self.labels is not None and len(set(map(str, self.labels))) != len(self.labels):
                raise ConfigError(f"labels of {self.column!r} repeat ({list(self.labels)}), "
                                  "which would merge bins; give each bin its own label.")

    def bin_labels(self) -> list[str]:
        if self.cuts is None:
            raise ConfigError(f"{self.column!r} is categorical; it has no bins")
        if self.labels is not None:
            return [str(x) for x in self.labels]
        c = [_fmt(x) for x in self.cuts]
        col = self.column
        names = [f"{col}<{c[0]}"]
        names += [f"{c[i]}<={col}<{c[i + 1]}" for i in range(len(c) - 1)]
        return names + [f"{col}>={c[-1]}"]

    def transform(self, frame: pd.DataFrame, missing: str = "error") -> pd.Series:
        """Attribute label of every row (strings).

        Parameters
        ----------
        frame : the data, with this attribute's column.
        missing : ``"error"`` (default): a missing value raises
            :class:`~noharm.errors.MissingValuesError`; ``"own"``: it gets the label
            ``COLUMN=missing``.
        """
        check_column(frame, self.column, role="group")
        if missing not in MISSING_POLICIES:
            raise ConfigError(f"missing must be one of {', '.join(MISSING_POLICIES)}, got "
                              f"{missing!r}.")
        col = frame[self.column]
        gap = col.isna()
        if gap.any() and missing == "error":
            raise MissingValuesError(
                f"group column {self.column!r} has {int(gap.sum())} missing values; drop "
                "those rows, fill them with an explicit category, or make them a group of "
                "their own (missing='own').")
        if gap.any():
            label = missing_label(self.column)
            known = self._labels(frame.loc[~gap])
            if label in set(known):
                raise ConfigError(f"group column {self.column!r} already has a value "
                                  f"{label!r}; rename it before making missing values a "
                                  "group of their own.")
            out = pd.Series(label, index=frame.index, name=self.column, dtype=object)
            out[~gap] = known
            return out
        return self._labels(frame)

    def _labels(self, frame: pd.DataFrame) -> pd.Series:
        col = frame[self.column]
        if self.cuts is not None:
            if not pd.api.types.is_numeric_dtype(col):
                raise ConfigError(f"group column {self.column!r} is not numeric, so it cannot "
                                  f"take cut points; use --group {self.column} without ':'.")
            codes = np.searchsorted(np.asarray(self.cuts), col.to_numpy(dtype=float),
                                    side="right")
            return pd.Series(np.asarray(self.bin_labels(), dtype=object)[codes],
                             index=frame.index, name=self.column)
        if isinstance(self.labels, Mapping):
            unknown = [v.item() if isinstance(v, np.generic) else v
                       for v in sorted(set(col.unique()) - set(self.labels), key=str)]
            if unknown:
                raise ConfigError(f"group column {self.column!r} has values {unknown[:5]} "
                                  "without a label.")
            return col.map(lambda v: str(self.labels[v])).rename(self.column)
        if pd.api.types.is_numeric_dtype(col):
            return col.map(lambda v: f"{self.column}={_fmt(v)}").rename(self.column)
        return col.astype(str).rename(self.column)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _fmt(x: float) -> str:
    x = float(x)
    return str(int(x)) if x.is_integer() else repr(x)


@dataclass(frozen=True)
class GroupSpec:
    """A list of :class:`Attribute`; intersectional labels join them with ``_``."""

    attributes: tuple[Attribute, ...]

    def __post_init__(self) -> None:
        if not self.attributes:
            raise ConfigError("a GroupSpec needs at least one attribute (e.g. --group sex).")
        cols = [a.column for a in self.attributes]
        if len(set(cols)) != len(cols):
            raise ConfigError(f"group attributes repeat a column: {cols}.")

    @property
    def columns(self) -> list[str]:
        return [a.column for a in self.attributes]

    @classmethod
    def parse(cls, specs: Sequence[str]) -> "GroupSpec":
        """Parse ``"col"``, ``"col:c1,c2"`` or ``"col:c1:label0,label1"`` strings."""
        attrs = []
        for s in specs:
            parts = str(s).split(":")
            if not parts[0] or len(parts) > 3:
                raise ConfigError(f"cannot parse group {s!r}; write COLUMN, COLUMN:CUTS or "
                                  "COLUMN:CUTS:LABELS (e.g. age:60:young,old).")
            if len(parts) == 1:
                attrs.append(Attribute(parts[0]))
                continue
            try:
                cuts = tuple(float(c) for c in parts[1].split(","))
            except ValueError:
                words = [w for w in parts[1].split(",") if not _is_number(w)]
                hint = (f"; for another attribute repeat the option: --group "
                        f"{parts[0]}:{','.join(w for w in parts[1].split(',') if w not in words)}"
                        f" --group {words[0]}" if len(parts) == 2 and words
                        and len(words) < len(parts[1].split(",")) else "")
                raise ConfigError(f"cut points in group {s!r} must be numbers, "
                                  f"got {parts[1]!r}{hint}.") from None
            labels = tuple(parts[2].split(",")) if len(parts) == 3 else None
            attrs.append(Attribute(parts[0], cuts, labels))
        return cls(tuple(attrs))

    def transform(self, frame: pd.DataFrame, missing: str = "error") -> pd.DataFrame:
        """One label column per attribute (``missing``: see :meth:`Attribute.transform`)."""
        return pd.concat([a.transform(frame, missing) for a in self.attributes], axis=1)

    def labels(self, frame: pd.DataFrame, missing: str = "error") -> pd.Series:
        """Intersectional subgroup label per row (attribute labels joined with ``_``)."""
        return subgroup_labels(self.transform(frame, missing))

    def describe(self) -> list[str]:
        out = []
        for a in self.attributes:
            out.append(a.column if a.cuts is None else
                       f"{a.column}:{','.join(_fmt(c) for c in a.cuts)}:{','.join(a.bin_labels())}")
        return out


def subgroup_labels(groups: pd.DataFrame) -> pd.Series:
    """Join attribute label columns into intersectional labels (``old_female``)."""
    cols = [groups[c].astype(str) for c in groups.columns]
    if not cols:
        return pd.Series([""] * len(groups), index=groups.index, name="subgroup")
    out = cols[0].str.cat(cols[1:], sep="_") if len(cols) > 1 else cols[0]
    return out.rename("subgroup")
