"""Options shared by several commands, defined once (type + flag + help)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._config import apply_config_file

DatasetOpt = Annotated[Optional[str], typer.Option(
    help="Built-in dataset: synthetic (default), heart, diabetes130 or mimic3-mortality.")]
DataOpt = Annotated[Optional[Path], typer.Option(
    help="Your own delimited text (CSV, TSV, ...) or Parquet file (with --target and "
    "--group), or the file of a built-in --dataset (e.g. the mimic3-mortality Parquet).")]
TargetOpt = Annotated[Optional[str], typer.Option(
    help="Target column of --data, or an expression making it binary: 'num>0' (also >=, <, "
    "<=, ==, !=).")]
SepOpt = Annotated[Optional[str], typer.Option(
    help="Delimiter of --data (',', ';', 'tab'); default: sniffed. Any file extension is "
    "read as text when --sep or --names is given.")]
NamesOpt = Annotated[Optional[str], typer.Option(
    help="Comma-separated column names of a --data file without a header row.")]
NaValuesOpt = Annotated[Optional[list[str]], typer.Option(
    help="Codes meaning 'missing': '?' in every column, 'chol=0' in one column. Repeatable "
    "or comma-separated ('?,NA'; 'chol=0,-9': codes after COL= stay with that column); "
    "'\\,' is a literal comma.")]
ExcludeOpt = Annotated[Optional[list[str]], typer.Option(
    help="Columns never used as features (IDs, leaks). Repeatable or comma-separated "
    "(--exclude id,visit).")]
KeepOpt = Annotated[Optional[list[str]], typer.Option(
    help="Keep ID-like columns (a different value on every row) as features; such columns "
    "are excluded by default. Repeatable or comma-separated.")]
DecimalOpt = Annotated[Optional[str], typer.Option(
    help="Decimal mark of the numbers in --data: '.' (default) or ',' (European exports, "
    "usually with --sep ';').")]
GroupMissingOpt = Annotated[str, typer.Option(
    help="Rows whose group value is missing: error (default), drop (leave just those rows "
    "out, with a warning saying how many) or own (a subgroup of its own, COL=missing).")]
PatientOpt = Annotated[Optional[str], typer.Option(
    help="Patient id column of --data: a patient's rows stay in one part of every split "
    "(never in training and test); not a feature.")]
TestTargetOpt = Annotated[Optional[str], typer.Option(
    help="Target of --test-data when it is coded differently: a column, or an expression "
    "true for the training's positive class (e.g. 'status==sick'). Default: --target, with "
    "the values matched to the training file's by value.")]
ImputeOpt = Annotated[str, typer.Option(
    help="median: missing feature values are filled from each run's training rows (median "
    "plus a missing indicator); none: a missing value is an error.")]
TestDataOpt = Annotated[Optional[Path], typer.Option(
    help="External validation file (read with the same options): every run is also "
    "evaluated on it.")]
GroupOpt = Annotated[Optional[list[str]], typer.Option(
    help="Group attribute of --data: COL, COL:CUTS or COL:CUTS:LABELS (e.g. "
    "age:60:young,old). Repeat for intersections (commas separate cut points and labels, "
    "not attributes).")]
DataPathOpt = Annotated[Optional[Path], typer.Option(
    help="Explicit file (or folder) of a built-in dataset.")]
DropnaOpt = Annotated[bool, typer.Option(
    help="Drop every row of --data with a missing value (default: impute, see --impute).")]
DropGroupColumnsOpt = Annotated[bool, typer.Option(
    help="Do not use the group columns of --data as features.")]
NSamplesOpt = Annotated[int, typer.Option(help="Rows of the synthetic cohort.")]
RandomStateOpt = Annotated[int, typer.Option(
    help="Seed of the split plan (and of the synthetic cohort).")]
OuterSplitsOpt = Annotated[int, typer.Option(help="Repeated outer splits (new test rows each).")]
ModelsOpt = Annotated[str, typer.Option(help="Comma-separated models.")]
SensitiveOpt = Annotated[Optional[str], typer.Option(
    help="Comma-separated sensitive attributes (default: every group attribute).")]

OutputOpt = Annotated[Optional[Path], typer.Option(
    help="Directory for results.db (resumable), results.csv, summary.csv, summary.md, "
    "config.json, splits.json, models/.")]
ForceNewOpt = Annotated[bool, typer.Option(
    help="Start afresh in --output: its noharm files are moved aside as NAME.old-<time>.")]
JobsOpt = Annotated[Optional[int], typer.Option(
    help="Worker processes, one torch thread each (default: the cores available); results "
    "do not depend on it.")]
BackendOpt = Annotated[str, typer.Option(help="joblib (local processes) or dask.")]
SchedulerOpt = Annotated[Optional[str], typer.Option(
    help="Address of a running Dask scheduler (with --backend dask).")]
QuietOpt = Annotated[bool, typer.Option(help="No progress bar or messages on stderr.")]

MaxEpochsOpt = Annotated[int, typer.Option(help="Most training epochs.")]
PatienceOpt = Annotated[int, typer.Option(help="Early-stopping patience (epochs).")]
HiddenLayersOpt = Annotated[int, typer.Option(help="Hidden layers of the network.")]
HiddenUnitsOpt = Annotated[int, typer.Option(help="Units per hidden layer.")]
BatchSizeOpt = Annotated[int, typer.Option(help="Mini-batch size.")]

ConfigOpt = Annotated[Optional[Path], typer.Option(
    "--config", is_eager=True, callback=apply_config_file,
    help="YAML file giving any of these options (the command line wins).")]
PrintConfigOpt = Annotated[bool, typer.Option(help="Show the effective config as YAML and exit.")]
