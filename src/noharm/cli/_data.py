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
    sep: Optional[str] = None
    names: Optional[str] = None
    na_values: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    keep: list[str] = field(default_factory=list)
    impute: str = "median"
    decimal: Optional[str] = None
    group_missing: str = "error"
    test_data: Optional[Path] = None
    test_target: Optional[str] = None
    images: Optional[Path] = None
    metadata: Optional[Path] = None
    protected: Optional[str] = None
    patient: Optional[str] = None
    file_column: str = "file"
    image_size: Optional[int] = None

    _LISTS = ("group", "na_values", "exclude", "keep")
    _PATHS = ("data", "data_path", "test_data", "images", "metadata")

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in self._PATHS:                  # absolute: audit --from works from anywhere
            d[k] = None if d[k] is None else str(Path(d[k]).resolve())
        for k in self._LISTS:
            d[k] = list(d[k] or [])
        return d

    @classmethod
    def pick(cls, options: dict) -> "DataSource":
        """The data options among a command's parameters (``locals()``)."""
        known = {k: v for k, v in options.items() if k in cls.__dataclass_fields__}
        for k in cls._LISTS:
            known[k] = list(known.get(k) or [])
        return cls(**known)

    @classmethod
    def from_dict(cls, d: dict) -> "DataSource":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        for k in cls._PATHS:
            if known.get(k):
                known[k] = Path(known[k])
        return cls(**known)

    def read_options(self):
        from ..datasets.reading import ReadOptions
        names = [n for n in (self.names or "").split(",")] if self.names else []
        return ReadOptions(sep=self.sep, names=tuple(names), na_values=tuple(self.na_values),
                           decimal=self.decimal or ".")

    def _tabular(self, path: Path, schema=None, target: Optional[str] = None,
                 classes=None):
        from ..datasets import load_tabular
        return load_tabular(path, target=target or self.target or "", groups=self.group,
                            dropna=self.dropna, drop_group_columns=self.drop_group_columns,
                            task=self.task, read=self.read_options(), exclude=self.exclude,
                            keep=self.keep, impute=self.impute, schema=schema,
                            group_missing=self.group_missing, patient=self.patient,
                            target_classes=classes)

    def load_external(self, cohort):
        """The --test-data cohort, encoded with ``cohort``'s feature schema and its target
        mapped onto the training file's target values by value (None without
        --test-data)."""
        if self.test_data is None:
            if self.test_target is not None:
                raise ConfigError("--test-target describes the target of --test-data; give "
                                  "the test file with --test-data.")
            return None
        from ..datasets.features import FeatureSchema
        schema = cohort.meta.get("schema")
        if schema is None:
            raise ConfigError("--test-data works with your own --data file (same columns), "
                              "not with a built-in --dataset.")
        ext = self._tabular(self.test_data, FeatureSchema.from_dict(schema),
                            target=self.test_target, classes=cohort.meta.get("target_classes"))
        ext.meta["name"] = f"{ext.meta['name']} (external)"
        return ext

    @property
    def is_images(self) -> bool:
        return (self.images is not None or self.metadata is not None
                or self.dataset == "covid-cxr")

    def _images(self):
        from ..datasets.images import load_covid_cxr, load_image_cohort
        if self.data is not None or self.group:
            raise ConfigError("images take --images DIR --metadata FILE --target COL "
                              "--protected COL; --data and --group are for tables.")
        if self.dataset == "covid-cxr":
            if self.images or self.metadata or self.target or self.patient:
                raise ConfigError("--dataset covid-cxr is read as it is; --images, "
                                  "--metadata, --target and --patient are for your own "
                                  "images.")
            cohort = load_covid_cxr(self.data_path)
            if self.image_size:
                cohort = load_image_cohort(cohort.meta["source"], Path(cohort.meta["source"])
                                           / "metadata.csv", target="label_covid",
                                           protected="sex", patient="patient_id",
                                           image_size=self.image_size, name="covid-cxr")
            return cohort
        if self.dataset not in (None, "images"):
            raise ConfigError(f"give either --dataset {self.dataset} or --images, not both.")
        missing = [o for o, v in (("--images DIR", self.images), ("--metadata FILE",
                                  self.metadata), ("--target COL", self.target)) if not v]
        if missing:
            raise ConfigError(f"your own images need {', '.join(missing)} too.")
        return load_image_cohort(self.images, self.metadata, target=self.target,
                                 protected=self.protected or "sex", patient=self.patient,
                                 file_column=self.file_column, image_size=self.image_size)

    def load(self):
        """The Cohort these options describe."""
        from ..datasets import load_dataset
        if self.is_images:
            return self._images()
        if self.image_size:
            raise ConfigError("--image-size describes an image cohort (with --images or "
                              "--dataset covid-cxr).")
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
            return self._tabular(data)
        used = [o for o, v in (("--sep", self.sep), ("--names", self.names),
                               ("--na-values", self.na_values), ("--exclude", self.exclude),
                               ("--keep", self.keep), ("--test-data", self.test_data),
                               ("--decimal", self.decimal), ("--patient", self.patient),
                               ("--group-missing", self.group_missing != "error"),
                               ("--test-target", self.test_target)) if v]
        if used:
            raise ConfigError(f"{', '.join(used)} describe(s) your own file; pass it with "
                              "--data (built-in datasets are read as they are).")
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
