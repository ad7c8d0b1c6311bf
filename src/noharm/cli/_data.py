"""Where a command's cohort comes from: one DataSource, built by keyword."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

from ..errors import ConfigError


@dataclass
class DataSource:
    """The data options of a command (recorded in config.json to reload the cohort)."""

    dataset: Optional[str] = None
    data: Optional[Path] = None
    target: Optional[str] = None
    group: list[str] = field(default_factory=list)
    data_path: Optional[Path] = None
    dropna: bool = False
    drop_group_columns: bool = False
    n_samples: int = 800
    random_state: int = 0
    task: str = "classification"

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("data", "data_path"):        # absolute: audit --from works from anywhere
            d[k] = None if d[k] is None else str(Path(d[k]).resolve())
        d["group"] = list(self.group or [])
        return d

    @classmethod
    def pick(cls, options: dict) -> "DataSource":
        """The data options among a command's parameters (``locals()``)."""
        known = {k: v for k, v in options.items() if k in cls.__dataclass_fields__}
        known["group"] = list(known.get("group") or [])
        return cls(**known)

    @classmethod
    def from_dict(cls, d: dict) -> "DataSource":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        for k in ("data", "data_path"):
            if known.get(k):
                known[k] = Path(known[k])
        return cls(**known)

    def load(self):
        """The Cohort these options describe."""
        from ..datasets import load_dataset, load_tabular
        data, data_path, dataset = self.data, self.data_path, self.dataset
        if data is not None and dataset not in (None, "tabular", "synthetic"):
            if data_path is not None:           # a built-in dataset read from --data
                raise ConfigError("give the file of a built-in dataset once: --data or "
                                  "--data-path.")
            data, data_path = None, data
        if data is not None:
            if dataset not in (None, "tabular"):
                raise ConfigError("give either --dataset synthetic or --data, not both.")
            if not self.group:
                raise ConfigError("--data needs at least one --group (e.g. --group age:60 "
                                  "--group sex).")
            return load_tabular(data, target=self.target or "", groups=self.group,
                                dropna=self.dropna, drop_group_columns=self.drop_group_columns,
                                task=self.task)
        name = dataset or "synthetic"
        if self.target and name == "diabetes130":
            return load_dataset(name, path=data_path, target=self.target)
        if self.target or self.group:
            raise ConfigError("--target and --group describe your own file; pass it with "
                              "--data (of the built-in datasets only diabetes130 takes "
                              "--target: readmit30 or time_in_hospital).")
        if name == "synthetic":
            return load_dataset("synthetic", n_samples=self.n_samples,
                                random_state=self.random_state)
        return load_dataset(name, path=data_path)
