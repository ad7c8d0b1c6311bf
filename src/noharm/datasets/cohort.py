"""The Cohort every loader returns."""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ..groups import subgroup_labels


@dataclass
class Cohort:
    """A prediction dataset with group attributes.

    Attributes
    ----------
    X : numeric feature frame (n_rows x n_features).
    y : binary target (0/1 Series).
    groups : one label column per group attribute (e.g. ``age``: young/old, ``sex``:
        female/male); intersectional labels come from :attr:`subgroups`.
    meta : name, source file, preprocessing notes.
    split_by : optional id per row (e.g. the patient): rows sharing an id are never put in
        different splits.
    """

    X: pd.DataFrame
    y: pd.Series
    groups: pd.DataFrame
    meta: dict = field(default_factory=dict)
    split_by: pd.Series | None = None

    @property
    def subgroups(self) -> pd.Series:
        """Intersectional subgroup label per row (``old_female``)."""
        return subgroup_labels(self.groups)

    @property
    def name(self) -> str:
        return str(self.meta.get("name", "cohort"))

    def __len__(self) -> int:
        return len(self.y)

    def summary(self) -> pd.DataFrame:
        """Rows and positive rate per subgroup."""
        df = pd.DataFrame({"subgroup": self.subgroups.to_numpy(), "y": self.y.to_numpy()})
        return df.groupby("subgroup")["y"].agg(n="size", positive_rate="mean").reset_index()
