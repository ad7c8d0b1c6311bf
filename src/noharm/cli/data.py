"""``noharm data``: list and show datasets, build the MIMIC-III cohort."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..errors import ConfigError
from ._data import DataSource
from ._errors import friendly
from ._options import (DataOpt, DataPathOpt, DatasetOpt, DecimalOpt, DropnaOpt, ExcludeOpt,
                       GroupMissingOpt, GroupOpt, ImputeOpt, KeepOpt, NamesOpt, NaValuesOpt,
                       PatientOpt, SepOpt, TargetOpt)

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                  help="Inspect the datasets noharm knows; build the MIMIC-III cohort.")


@app.command("list")
@friendly
def data_list() -> None:
    """List the built-in datasets and where their files resolve."""
    from ..datasets import DATASETS
    from ..datasets._fetch import cache_dir, locate
    from ..datasets.heart import URL
    files = {"heart": ("uci_heart", "processed.cleveland.data", URL),
             "diabetes130": ("diabetes130", "diabetic_data.csv", None),
             "mimic3-mortality": ("mimic3", "cohort.parquet", None),
             "covid-cxr": ("covid_cxr", "metadata.csv", None)}
    for name, desc in DATASETS.items():
        typer.echo(f"{name:16s} {desc}")
        where = "generated in memory" if name not in files else locate(*files[name])
        typer.echo(f"{'':16s} -> {where}")
    typer.echo(f"NOHARM_DATA_DIR={os.environ.get('NOHARM_DATA_DIR', '(unset)')}; user cache "
               f"{cache_dir()}")


@app.command("show")
@friendly
def data_show(dataset: DatasetOpt = None, data: DataOpt = None, target: TargetOpt = None,
              group: GroupOpt = None, data_path: DataPathOpt = None,
              sep: SepOpt = None, names: NamesOpt = None, na_values: NaValuesOpt = None,
              exclude: ExcludeOpt = None, keep: KeepOpt = None, impute: ImputeOpt = "median",
              dropna: DropnaOpt = False, decimal: DecimalOpt = None,
              group_missing: GroupMissingOpt = "error", patient: PatientOpt = None) -> None:
    """Rows, features, missing cells, warnings (IDs, copied rows, leaks) and subgroup sizes
    of a dataset, as a study would read it."""
    cohort = DataSource.pick(locals()).load()
    for w in cohort.meta.get("warnings") or []:
        typer.echo(f"warning: {w}")
    gaps = cohort.meta.get("missing_cells")
    if cohort.meta.get("kind") == "images":
        h, w = cohort.meta["image_size"]
        typer.echo(f"{cohort.name}: {len(cohort)} images, {h} x {w}, "
                   f"{cohort.meta['channels']} channel(s)"
                   + ("" if cohort.split_by is None else
                      f", {cohort.split_by.nunique()} patients"))
    else:
        typer.echo(f"{cohort.name}: {len(cohort)} rows, {cohort.X.shape[1]} features"
                   + (f", {gaps} missing cells (imputed per run)" if gaps else "")
                   + ("" if cohort.split_by is None else
                      f", {cohort.split_by.nunique()} patients"))
    typer.echo(cohort.summary().to_string(index=False))


@app.command("mimic3")
@friendly
def data_mimic3(
    mimic_dir: Annotated[Path, typer.Option(help="Folder of the MIMIC-III v1.4 CSV or CSV.gz "
                                            "files.")],
    out: Annotated[Path, typer.Option(help="Parquet file to write (e.g. cohort.parquet).")],
    memory_limit: Annotated[str, typer.Option(help="DuckDB memory limit (spills to disk "
                                              "beyond it).")] = "2GB",
    threads: Annotated[Optional[int], typer.Option(help="DuckDB threads (default: all "
                                                   "cores).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it exists.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress display.")] = False,
) -> None:
    """Build the in-hospital mortality cohort (first ICU stay > 48 h, adults) from raw
    MIMIC-III files with DuckDB; features from the first 48 hours."""
    from ..datasets.mimic3 import build_mimic3_cohort
    if out.exists() and not overwrite:
        raise ConfigError(f"{out} exists; pass --overwrite to replace it or choose another "
                          "--out.")
    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {threads}.")
    bar = _TableProgress(quiet)
    try:
        report = build_mimic3_cohort(mimic_dir, out, memory_limit=memory_limit,
                                     threads=threads, progress=bar)
    except OSError as exc:
        raise ConfigError(f"cannot write {out} ({exc.strerror}); choose another --out."
                          ) from None
    finally:
        bar.close()
    c = report.counts
    typer.echo(f"{c['icu_stays']} ICU stays of {c['patients']} patients -> first stays "
               f"{c['first_stays']} -> adults {c['adults']} -> ICU stay > 48 h "
               f"{c['los_over_48h']}")
    typer.echo(f"wrote {report.out}: {c['los_over_48h']} ICU stays, {report.n_features} "
               f"features, {c['with_mortality']} in-hospital deaths")
    typer.echo("seconds per stage: " + ", ".join(f"{k} {v:.1f}"
                                                  for k, v in report.seconds.items()))


class _TableProgress:
    """One rich progress bar per MIMIC table while DuckDB scans it."""

    def __init__(self, quiet: bool) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
        self.quiet = quiet
        self.bar = Progress(TextColumn("{task.description:28s}"), BarColumn(),
                            TextColumn("{task.percentage:>5.1f} %"), TimeElapsedColumn(),
                            console=Console(stderr=True))
        self.tasks: dict[str, Any] = {}

    def __call__(self, table: str, percent: float) -> None:
        if self.quiet:
            return
        if not self.tasks:
            self.bar.start()
        if table not in self.tasks:
            self.tasks[table] = self.bar.add_task(table, total=100)
        self.bar.update(self.tasks[table], completed=percent)

    def close(self) -> None:
        if self.tasks:
            self.bar.stop()
