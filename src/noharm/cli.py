"""The ``noharm`` command line (typer).

Every bad input ends in one line on stderr and exit code 2, never a traceback.
"""
from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from .errors import ConfigError, NoharmError

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                  help="Personalize clinical prediction models without harm.")
data_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                       help="Inspect the datasets noharm knows.")
app.add_typer(data_app, name="data")


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def friendly(fn: Callable) -> Callable:
    """Turn NoharmError (and unwritable outputs) into one line + exit code 2."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except NoharmError as exc:
            _fail(str(exc))
        except PermissionError as exc:
            _fail(f"cannot write {exc.filename}: permission denied; choose another --output.")
    return wrapper


def _load_cohort(dataset: Optional[str], data: Optional[Path], target: Optional[str],
                 group: Optional[list[str]], data_path: Optional[Path], dropna: bool,
                 drop_group_columns: bool, n_samples: int, seed: int):
    from .datasets import load_dataset, load_tabular
    if data is not None:
        if dataset not in (None, "tabular"):
            raise ConfigError("give either --dataset or --data, not both.")
        if not group:
            raise ConfigError("--data needs at least one --group (e.g. --group age:60 "
                              "--group sex).")
        return load_tabular(data, target=target or "", groups=group, dropna=dropna,
                            drop_group_columns=drop_group_columns)
    if target or group:
        raise ConfigError("--target and --group describe your own file; pass it with --data.")
    name = dataset or "synthetic"
    if name == "synthetic":
        return load_dataset("synthetic", n_samples=n_samples, random_state=seed)
    return load_dataset(name, path=data_path)


def _check_output(output: Optional[Path], overwrite: bool) -> None:
    if output is None:
        return
    if output.exists() and not output.is_dir():
        raise ConfigError(f"--output {output} is a file; give a directory.")
    if (output / "results.csv").exists() and not overwrite:
        raise ConfigError(f"{output} already holds results; pass --overwrite to replace them "
                          "or choose another --output.")
    try:
        output.mkdir(parents=True, exist_ok=True)
        probe = output / ".noharm-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"cannot write to --output {output} ({exc.strerror}); "
                          "choose a writable directory.") from None


@app.command()
@friendly
def run(
    dataset: Optional[str] = typer.Option(None, help="Built-in dataset: synthetic (default) "
                                          "or heart."),
    data: Optional[Path] = typer.Option(None, help="Your own CSV or Parquet file."),
    target: Optional[str] = typer.Option(None, help="Binary target column of --data."),
    group: Optional[list[str]] = typer.Option(
        None, help="Group attribute of --data: COL, COL:CUTS or COL:CUTS:LABELS "
                   "(e.g. age:60:young,old). Repeat for intersections."),
    data_path: Optional[Path] = typer.Option(None, help="Explicit file (or folder) of a "
                                             "built-in dataset."),
    models: str = typer.Option("generic,decoupled,conditional-bias,logreg",
                               help="Comma-separated models."),
    seeds: int = typer.Option(5, help="Seeds per fold (runs = seeds x folds)."),
    folds: int = typer.Option(5, help="Cross-validation folds on the training part."),
    outer_splits: int = typer.Option(1, help="Repeated 80:20 outer splits."),
    test_size: float = typer.Option(0.2, help="Test share of each outer split."),
    jobs: int = typer.Option(1, help="Processes (one torch thread each)."),
    output: Optional[Path] = typer.Option(None, help="Directory for results.csv, summary.md, "
                                          "summary.csv and config.json."),
    overwrite: bool = typer.Option(False, help="Replace results already in --output."),
    max_epochs: int = typer.Option(200),
    patience: int = typer.Option(20, help="Early-stopping patience (epochs)."),
    batch_size: int = typer.Option(64),
    lr: float = typer.Option(1e-3, help="Adam learning rate."),
    hidden_layers: int = typer.Option(6),
    hidden_units: int = typer.Option(64),
    attr_layers: int = typer.Option(5, help="Depth of the attribute predictor."),
    bias_layers: int = typer.Option(1, help="K, bias vectors of the conditional-bias model."),
    training: str = typer.Option("two_stage", help="two_stage or joint."),
    random_state: int = typer.Option(0, help="Seed of the outer splits."),
    n_samples: int = typer.Option(800, help="Rows of the synthetic cohort."),
    dropna: bool = typer.Option(False, help="Drop rows of --data with missing values."),
    drop_group_columns: bool = typer.Option(False, help="Do not use the group columns of "
                                            "--data as features."),
    quiet: bool = typer.Option(False, help="No progress messages."),
) -> None:
    """Run the personalization protocol (generic vs decoupled vs conditional bias)."""
    from .experiments import ProtocolConfig, run_protocol, summarize
    from .report import markdown_report

    cfg = ProtocolConfig(
        models=tuple(m.strip() for m in models.split(",") if m.strip()), n_seeds=seeds,
        n_folds=folds, outer_splits=outer_splits, test_size=test_size, random_state=random_state,
        hidden_layers=hidden_layers, hidden_units=hidden_units, lr=lr, batch_size=batch_size,
        max_epochs=max_epochs, patience=patience, attr_layers=attr_layers, n_bias=bias_layers,
        training=training, n_jobs=jobs).validate()
    from ._validation import check_choice
    check_choice(training, name="--training", choices=("two_stage", "joint"))
    if not 1 <= bias_layers <= min(hidden_layers, attr_layers):
        raise ConfigError(f"--bias-layers must be between 1 and min(--hidden-layers, "
                          f"--attr-layers) = {min(hidden_layers, attr_layers)}.")
    _check_output(output, overwrite)
    cohort = _load_cohort(dataset, data, target, group, data_path, dropna, drop_group_columns,
                          n_samples, random_state)
    say = (lambda s: None) if quiet else (lambda s: typer.echo(s, err=True))
    say(f"{cohort.name}: {len(cohort)} rows, {cohort.X.shape[1]} features, subgroups "
        + ", ".join(f"{k} {v}" for k, v in cohort.subgroups.value_counts().items()))
    result = run_protocol(cohort, cfg, progress=say)
    summary = summarize(result.results)
    text = markdown_report(summary, title=f"{cohort.name}: {cfg.n_seeds} seeds x "
                           f"{cfg.n_folds} folds x {cfg.outer_splits} outer split(s)")
    typer.echo(text)
    for note in result.notes:
        typer.echo(f"note: {note}")
    if output is not None:
        result.results.to_csv(output / "results.csv", index=False)
        summary.to_csv(output / "summary.csv", index=False)
        (output / "summary.md").write_text(text)
        cfg_out = dict(result.config, timings_s=result.timings, notes=result.notes)
        (output / "config.json").write_text(json.dumps(cfg_out, indent=2, default=str))
        say(f"wrote {output}/results.csv, summary.csv, summary.md, config.json")


@data_app.command("list")
@friendly
def data_list() -> None:
    """List the built-in datasets and where their files resolve."""
    from .datasets import DATASETS
    for name, desc in DATASETS.items():
        typer.echo(f"{name:10s} {desc}")
    typer.echo(f"NOHARM_DATA_DIR={os.environ.get('NOHARM_DATA_DIR', '(unset)')}")


@data_app.command("show")
@friendly
def data_show(
    dataset: str = typer.Option("synthetic", help="synthetic or heart."),
    data: Optional[Path] = typer.Option(None, help="Your own CSV or Parquet file."),
    target: Optional[str] = typer.Option(None),
    group: Optional[list[str]] = typer.Option(None),
    data_path: Optional[Path] = typer.Option(None),
    dropna: bool = typer.Option(False),
) -> None:
    """Rows, features and subgroup sizes of a dataset."""
    cohort = _load_cohort(None if data else dataset, data, target, group, data_path, dropna,
                          False, 800, 0)
    typer.echo(f"{cohort.name}: {len(cohort)} rows, {cohort.X.shape[1]} features")
    typer.echo(cohort.summary().to_string(index=False))


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
