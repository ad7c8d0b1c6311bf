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

import numpy as np
import pandas as pd
import typer

from .errors import ConfigError, NoharmError

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                  help="Personalize clinical prediction models without harm.")
data_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                       help="Inspect the datasets noharm knows; build the MIMIC-III cohort.")
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


# Options shared by every command that loads data (one definition, one help text).
DATASET = typer.Option(None, help="Built-in dataset: synthetic (default), heart, diabetes130 or "
                       "mimic3-mortality.")
DATA = typer.Option(None, help="Your own CSV or Parquet file (with --target and --group), or "
                    "the file of a built-in --dataset (e.g. the mimic3-mortality Parquet).")
TARGET = typer.Option(None, help="Binary target column of --data.")
GROUP = typer.Option(None, help="Group attribute of --data: COL, COL:CUTS or COL:CUTS:LABELS "
                     "(e.g. age:60:young,old). Repeat for intersections.")
DATA_PATH = typer.Option(None, help="Explicit file (or folder) of a built-in dataset.")
DROPNA = typer.Option(False, help="Drop rows of --data with missing values.")


def _load_cohort(dataset: Optional[str], data: Optional[Path], target: Optional[str],
                 group: Optional[list[str]], data_path: Optional[Path], dropna: bool,
                 drop_group_columns: bool, n_samples: int, seed: int,
                 task: str = "classification"):
    from .datasets import load_dataset, load_tabular
    if data is not None and dataset not in (None, "tabular", "synthetic"):
        if data_path is not None:           # a built-in dataset read from --data
            raise ConfigError("give the file of a built-in dataset once: --data or "
                              "--data-path.")
        data, data_path = None, data
    if data is not None:
        if dataset not in (None, "tabular"):
            raise ConfigError("give either --dataset synthetic or --data, not both.")
        if not group:
            raise ConfigError("--data needs at least one --group (e.g. --group age:60 "
                              "--group sex).")
        return load_tabular(data, target=target or "", groups=group, dropna=dropna,
                            drop_group_columns=drop_group_columns, task=task)
    name = dataset or "synthetic"
    if target and name == "diabetes130":
        return load_dataset(name, path=data_path, target=target)
    if target or group:
        raise ConfigError("--target and --group describe your own file; pass it with --data "
                          "(of the built-in datasets only diabetes130 takes --target: "
                          "readmit30 or time_in_hospital).")
    if name == "synthetic":
        return load_dataset("synthetic", n_samples=n_samples, random_state=seed)
    return load_dataset(name, path=data_path)


def _check_output(output: Optional[Path], overwrite: bool, flag: str = "--overwrite") -> None:
    """--output must be a writable directory; without ``overwrite`` it must not hold
    results yet (``noharm run`` passes True: it resumes through its results store)."""
    if output is None:
        return
    if output.exists() and not output.is_dir():
        raise ConfigError(f"--output {output} is a file; give a directory.")
    if any((output / f).exists() for f in ("results.csv", "audit.csv", "debias.csv")) \
            and not overwrite:
        raise ConfigError(f"{output} already holds results; pass {flag} to replace them "
                          "or choose another --output.")
    try:
        output.mkdir(parents=True, exist_ok=True)
        probe = output / ".noharm-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"cannot write to --output {output} ({exc.strerror}); "
                          "choose a writable directory.") from None


_KINDS = {"int": "int", "float": "float", "bool": "bool", "str": "str", "Path": "path",
          "list[str]": "str"}


def _option_kind(p: Any) -> str:
    bare = p.bare_type() if callable(getattr(p, "bare_type", None)) else None
    if bare is None:          # a plain click parameter
        bare = {"integer": "int", "boolean": "bool", "text": "str"}.get(p.type.name,
                                                                       p.type.name)
    return _KINDS.get(str(bare), "str")


def _apply_config_file(ctx: typer.Context, param: Any, value: Optional[Path]) -> Optional[Path]:
    """Eager ``--config``: the YAML file's values become the defaults of the other options
    (the command line still wins).  Bad files end as one line, exit code 2."""
    if value is None or ctx.resilient_parsing:
        return value
    from .experiments.config_file import OptionSpec, read_config
    specs = {p.name: OptionSpec(p.name, _option_kind(p), bool(getattr(p, "multiple", False)))
             for p in ctx.command.params if p.name not in ("config", "print_config")}
    try:
        values = read_config(value, specs)
    except NoharmError as exc:
        _fail(str(exc))
    ctx.default_map = {**(ctx.default_map or {}), **values}
    return value


def _print_config(ctx: typer.Context) -> None:
    import yaml
    shown = {k.replace("_", "-"): (str(v) if isinstance(v, Path) else
                                   list(v) if isinstance(v, tuple) else v)
             for k, v in ctx.params.items() if k not in ("config", "print_config")}
    typer.echo(yaml.safe_dump(shown, sort_keys=False).rstrip())


class _Progress:
    """Runs done / total with an ETA: a rich bar on a terminal, one plain line per
    finished task otherwise (logs), nothing with --quiet."""

    def __init__(self, quiet: bool) -> None:
        from rich.console import Console
        self.quiet = quiet
        self.console = Console(stderr=True)
        self.bar = None
        self.task = None

    def __call__(self, done: int, total: int, message: Optional[str]) -> None:
        if self.quiet:
            return
        if not self.console.is_terminal:
            if message:
                self.console.print(f"[{done}/{total} runs] {message}", highlight=False,
                                   markup=False)
            return
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)
        if self.bar is None:
            self.bar = Progress(TextColumn("runs"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                TextColumn("{task.description}"), console=self.console)
            self.bar.start()
            self.task = self.bar.add_task("", total=total, completed=done)
        self.bar.update(self.task, completed=done, description=message or "")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


@app.command()
@friendly
def run(
    ctx: typer.Context,
    config: Optional[Path] = typer.Option(None, "--config", is_eager=True,
                                          callback=_apply_config_file,
                                          help="YAML file giving any of these options "
                                          "(the command line wins)."),
    print_config: bool = typer.Option(False, help="Show the effective config as YAML and "
                                      "exit."),
    dataset: Optional[str] = DATASET,
    data: Optional[Path] = DATA,
    target: Optional[str] = TARGET,
    group: Optional[list[str]] = GROUP,
    data_path: Optional[Path] = DATA_PATH,
    models: str = typer.Option("generic,decoupled,conditional-bias,logreg",
                               help="Comma-separated models."),
    seeds: int = typer.Option(5, help="Seeds per fold (runs = seeds x folds)."),
    folds: int = typer.Option(5, help="Cross-validation folds on the training part."),
    outer_splits: int = typer.Option(1, help="Repeated 80:20 outer splits."),
    test_size: float = typer.Option(0.2, help="Test share of each outer split."),
    jobs: int = typer.Option(1, help="Processes (one torch thread each)."),
    backend: str = typer.Option("joblib", help="joblib (local processes) or dask."),
    scheduler: Optional[str] = typer.Option(None, help="Address of a running Dask scheduler "
                                            "(with --backend dask)."),
    ensemble_size: int = typer.Option(25, help="Runs trained together as one batched "
                                      "ensemble (and stored together)."),
    output: Optional[Path] = typer.Option(None, help="Directory for results.db (resumable), "
                                          "results.csv, summary.md, summary.csv and "
                                          "config.json."),
    force_new: bool = typer.Option(False, help="Start new results in --output instead of "
                                   "resuming (or refusing another config's store); the old "
                                   "store is kept as results.db.old-<time>."),
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
    dropna: bool = DROPNA,
    drop_group_columns: bool = typer.Option(False, help="Do not use the group columns of "
                                            "--data as features."),
    sensitive: Optional[str] = typer.Option(None, help="With --models generic,fairgrad: "
                                            "comma-separated sensitive attributes (default: "
                                            "all group attributes)."),
    fairness_loss: str = typer.Option("eqodds", help="FairGrad loss: eqodds, eod or spd."),
    projection: str = typer.Option("conflict", help="FairGrad projection: conflict or always."),
    fairness_weights: Optional[str] = typer.Option(None, help="FairGrad weight per sensitive "
                                                   "attribute, comma-separated."),
    clusters: Optional[str] = typer.Option(None, help="With --models generic,medl,fair-medl: "
                                           "the cluster column (e.g. admission_source_id)."),
    task: str = typer.Option("classification", help="With medl: classification or "
                             "regression (e.g. --target time_in_hospital)."),
    unseen_share: float = typer.Option(0.1, help="With medl: share of rows in clusters "
                                       "held out as unseen."),
    adversary_weight: float = typer.Option(0.1, help="With medl: weight of the cluster "
                                           "adversary."),
    kl_weight: float = typer.Option(1e-3, help="With medl: weight of the random effects' KL "
                                    "term."),
    harm_guard: bool = typer.Option(False, help="Add harm-guard rows: per run and group, the "
                                    "personalized model only where its early-stopping fold "
                                    "does not show it worse than generic."),
    guard_alpha: float = typer.Option(0.05, help="Level of the harm guard's one-sided test."),
    quiet: bool = typer.Option(False, help="No progress bar or messages."),
) -> None:
    """Run the personalization protocol (generic vs decoupled vs conditional bias).

    With --output, every finished run is stored in DIR/results.db at once; running the
    same command again resumes where it stopped.  With fairgrad among --models it compares
    FairGrad with generic; with medl / fair-medl (and --clusters) the mixed-effects models.
    """
    from .experiments import ProtocolConfig, run_protocol, summarize
    from .experiments.protocol import protocol_identity
    from .experiments.store import STORE_NAME, ResultsStore
    from .report import markdown_report

    if print_config:
        _print_config(ctx)
        return
    model_list = tuple(m.strip() for m in models.split(",") if m.strip())
    if {"medl", "fair-medl"} & set(model_list):
        _run_medl(dataset, data, target, group, data_path, dropna, drop_group_columns,
                  n_samples, random_state, model_list, sensitive, clusters, task, unseen_share,
                  adversary_weight, kl_weight, fairness_weights, seeds, hidden_layers,
                  hidden_units, batch_size, max_epochs, patience, jobs, output, force_new,
                  quiet)
        return
    if clusters:
        raise ConfigError("--clusters belongs to the mixed-effects comparison; add medl to "
                          "--models (e.g. --models generic,medl,fair-medl).")
    if "fairgrad" in model_list:
        _run_fairness(dataset, data, target, group, data_path, dropna, drop_group_columns,
                      n_samples, random_state, model_list, sensitive, fairness_loss,
                      projection, fairness_weights, seeds, hidden_layers, hidden_units,
                      max_epochs, patience, output, force_new, quiet)
        return
    if sensitive:
        raise ConfigError("--sensitive belongs to the FairGrad comparison; add fairgrad to "
                          "--models (e.g. --models generic,fairgrad).")
    cfg = ProtocolConfig(
        models=tuple(m.strip() for m in models.split(",") if m.strip()), n_seeds=seeds,
        n_folds=folds, outer_splits=outer_splits, test_size=test_size, random_state=random_state,
        hidden_layers=hidden_layers, hidden_units=hidden_units, lr=lr, batch_size=batch_size,
        max_epochs=max_epochs, patience=patience, attr_layers=attr_layers, n_bias=bias_layers,
        training=training, n_jobs=jobs, harm_guard=harm_guard,
        guard_alpha=guard_alpha, backend=backend, scheduler=scheduler,
        ensemble_size=ensemble_size).validate()
    from ._validation import check_choice
    check_choice(training, name="--training", choices=("two_stage", "joint"))
    if not 1 <= bias_layers <= min(hidden_layers, attr_layers):
        raise ConfigError(f"--bias-layers must be between 1 and min(--hidden-layers, "
                          f"--attr-layers) = {min(hidden_layers, attr_layers)}.")
    _check_output(output, True)
    cohort = _load_cohort(dataset, data, target, group, data_path, dropna, drop_group_columns,
                          n_samples, random_state)
    say = (lambda s: None) if quiet else (lambda s: typer.echo(s, err=True))
    store = None
    if output is not None:
        store = ResultsStore(output / STORE_NAME, protocol_identity(cohort, cfg),
                             force_new=force_new)
        if store.moved_to is not None:
            say(f"kept the old results store as {store.moved_to}")
    say(f"{cohort.name}: {len(cohort)} rows, {cohort.X.shape[1]} features, subgroups "
        + ", ".join(f"{k} {v}" for k, v in cohort.subgroups.value_counts().items()))
    source = {"dataset": dataset, "data": str(data) if data else None, "target": target,
              "group": list(group or []), "data_path": str(data_path) if data_path else None,
              "dropna": dropna, "drop_group_columns": drop_group_columns,
              "n_samples": n_samples, "random_state": random_state}
    bar = _Progress(quiet)
    try:
        result = run_protocol(cohort, cfg, progress=say, store=store, on_task=bar,
                              model_dir=(output / "models") if output is not None else None)
    finally:
        bar.close()
        if store is not None:
            store.close()
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
        cfg_out = dict(result.config, data_source=source, timings_s=result.timings,
                       notes=result.notes)
        (output / "config.json").write_text(json.dumps(cfg_out, indent=2, default=str))
        (output / "splits.json").write_text(json.dumps(result.splits))
        say(f"wrote {output}/results.db, results.csv, summary.csv, summary.md, config.json, "
            "splits.json, models/")


def _write_comparison(output: Optional[Path], results: pd.DataFrame, text: str, info: dict,
                      say: Callable[[str], None]) -> None:
    """results.csv, summary.md and config.json of a FairGrad or MEDL comparison."""
    if output is None:
        return
    results.to_csv(output / "results.csv", index=False)
    (output / "summary.md").write_text(text)
    (output / "config.json").write_text(json.dumps(info, indent=2, default=str))
    say(f"wrote {output}/results.csv, summary.md, config.json")


def _run_fairness(dataset, data, target, group, data_path, dropna, drop_group_columns,
                  n_samples, random_state, model_list, sensitive, fairness_loss, projection,
                  fairness_weights, seeds, hidden_layers, hidden_units, max_epochs, patience,
                  output, force_new, quiet) -> None:
    """`noharm run --models generic,fairgrad`: the multi-attribute fairness comparison."""
    from ._validation import check_choice
    from .experiments.fairness_protocol import FairnessConfig, run_fairness, summarize_fairness
    from .report import markdown_table

    check_choice(fairness_loss, name="--fairness-loss", choices=("eqodds", "eod", "spd"))
    check_choice(projection, name="--projection", choices=("conflict", "always"))
    weights = None
    if fairness_weights:
        try:
            weights = tuple(float(w) for w in fairness_weights.split(","))
        except ValueError:
            raise ConfigError(f"--fairness-weights must be numbers, got {fairness_weights!r}."
                              ) from None
    _check_output(output, force_new, flag="--force-new")
    cohort = _load_cohort(dataset, data, target, group, data_path, dropna, drop_group_columns,
                          n_samples, random_state)
    attrs = tuple(s.strip() for s in sensitive.split(",")) if sensitive else ()
    if weights is not None and len(weights) != len(attrs or cohort.groups.columns):
        raise ConfigError(f"--fairness-weights has {len(weights)} values for "
                          f"{len(attrs or cohort.groups.columns)} sensitive attributes.")
    cfg = FairnessConfig(sensitive=attrs, models=model_list, n_seeds=seeds,
                         fairness_loss=fairness_loss, projection=projection,
                         fairness_weights=weights, hidden_layers=hidden_layers,
                         hidden_units=hidden_units, max_epochs=max_epochs, patience=patience)
    say = (lambda s: None) if quiet else (lambda s: typer.echo(s, err=True))
    results, info = run_fairness(cohort, cfg, progress=say)
    table = summarize_fairness(results)
    spe = info["seconds_per_epoch"]
    text = (f"## Generic vs FairGrad on {cohort.name} ({fairness_loss}, {projection} "
            f"projection, {seeds} seed(s)); mean [95 % CI] over seeds\n\n"
            + markdown_table(table.fillna("")) + "\n\nseconds per epoch: "
            + ", ".join(f"{m} {v:.3f}" for m, v in spe.items()) + "\n")
    typer.echo(text)
    _write_comparison(output, results, text, info, say)


def _run_medl(dataset, data, target, group, data_path, dropna, drop_group_columns, n_samples,
              random_state, model_list, sensitive, clusters, task, unseen_share,
              adversary_weight, kl_weight, fairness_weights, seeds, hidden_layers,
              hidden_units, batch_size, max_epochs, patience, jobs, output, force_new,
              quiet) -> None:
    """`noharm run --models generic,medl,fair-medl --clusters COL`: mixed-effects comparison."""
    from .experiments.medl_protocol import MedlConfig, run_medl, summarize_medl
    from .report import markdown_table

    weight = 1.0
    if fairness_weights:
        try:
            weight = float(fairness_weights)
        except ValueError:
            raise ConfigError("with fair-medl, --fairness-weights is one number (the weight "
                              f"of the fairness adversaries), got {fairness_weights!r}."
                              ) from None
    _check_output(output, force_new, flag="--force-new")
    from ._validation import check_choice
    check_choice(task, name="--task", choices=("classification", "regression"))
    cohort = _load_cohort(dataset, data, target, group, data_path, dropna, drop_group_columns,
                          n_samples, random_state, task=task)
    attrs = tuple(s.strip() for s in sensitive.split(",")) if sensitive else ()
    cfg = MedlConfig(clusters=clusters or "", sensitive=attrs, models=model_list, task=task,
                     n_seeds=seeds, unseen_share=unseen_share,
                     hidden_layers=hidden_layers,
                     hidden_units=hidden_units, batch_size=batch_size, max_epochs=max_epochs,
                     patience=patience, adversary_weight=adversary_weight,
                     kl_weight=kl_weight, fairness_weight=weight, n_jobs=jobs)
    say = (lambda s: None) if quiet else (lambda s: typer.echo(s, err=True))
    results, info = run_medl(cohort, cfg, progress=say)
    perf, imp = summarize_medl(results)
    shown = imp.copy()
    for c in ("medl", "fair-medl"):
        shown[c] = shown[c].map(lambda v: f"{v:.4f}")
    shown["improvement_pct"] = shown["improvement_pct"].map(
        lambda v: "–" if v != v else f"{v:+.0f} %")
    shown["paper_best_pct"] = shown["paper_best_pct"].map(
        lambda v: "–" if v != v else f"{v:.0f} %")
    text = (f"## Generic vs MEDL vs fair MEDL on {cohort.name} ({cfg.task}, clusters "
            f"{cfg.clusters}, {seeds} seed(s)); mean ± sd over seeds\n\n"
            + markdown_table(perf.fillna("")) + "\n\n### Fairness: fair-MEDL against MEDL "
            "(seen-cluster test set; paper = best improvement reported by Nguyen et al.)\n\n"
            + (markdown_table(shown) if len(shown) else "(no fair-medl and medl pair)") + "\n")
    typer.echo(text)
    _write_comparison(output, results, text, info, say)


@app.command()
@friendly
def debias(
    dataset: Optional[str] = DATASET,
    data: Optional[Path] = DATA,
    target: Optional[str] = TARGET,
    group: Optional[list[str]] = GROUP,
    data_path: Optional[Path] = DATA_PATH,
    protected: str = typer.Option("sex", help="Protected attribute (a group column)."),
    privileged: Optional[str] = typer.Option(None, help="Its privileged value (defaults: sex "
                                             "male, gender Male, race Caucasian, age young)."),
    metric: str = typer.Option("spd", help="Bias metric: spd or eod."),
    methods: Optional[str] = typer.Option(None, help="Comma-separated subset of: "
                                          "random_perturbation, pruning, pruning_dynamic, "
                                          "adaptive_pruning, bias_gradient, "
                                          "engineered_gradient, adversarial, reject_option, "
                                          "eq_odds (default: all)."),
    seeds: int = typer.Option(3, help="Seeds (a new split and model each)."),
    objective: str = typer.Option("constrained", help="constrained (min |bias| s.t. BA >= "
                                  "rho) or indicator (BA * 1[|bias| < eps])."),
    rho: Optional[float] = typer.Option(None, help="BA floor (default 0.95 x original)."),
    eps: float = typer.Option(0.05, help="Bias tolerance of the indicator objective and of "
                              "reject option classification."),
    max_epochs: int = typer.Option(200), patience: int = typer.Option(20),
    hidden_layers: int = typer.Option(6), hidden_units: int = typer.Option(64),
    n_samples: int = typer.Option(800, help="Rows of the synthetic cohort."),
    dropna: bool = DROPNA,
    output: Optional[Path] = typer.Option(None, help="Directory for debias.csv, debias.md, "
                                          "scatter.png."),
    overwrite: bool = typer.Option(False),
    quiet: bool = typer.Option(False),
) -> None:
    """Debias a standard model with every method and compare them (BA, bias, time)."""
    from .experiments.debias_protocol import DebiasConfig, run_debias, summarize_debias
    from .report import bias_scatter, markdown_table

    chosen = tuple(m.strip() for m in methods.split(",") if m.strip()) if methods else None
    cfg = DebiasConfig(protected=protected, privileged=privileged, metric=metric,
                       n_seeds=seeds, objective=objective, rho=rho, eps=eps,
                       hidden_layers=hidden_layers, hidden_units=hidden_units,
                       max_epochs=max_epochs, patience=patience,
                       **({"methods": chosen} if chosen else {})).validate()
    _check_output(output, overwrite)
    cohort = _load_cohort(dataset, data, target, group, data_path, dropna, False, n_samples, 0)
    say = (lambda s: None) if quiet else (lambda s: typer.echo(s, err=True))
    out = run_debias(cohort, cfg, progress=say)
    s = summarize_debias(out.results)
    shown = pd.DataFrame({
        "method": s["method"],
        "balanced accuracy": [f"{m:.3f} ± {sd:.3f}" for m, sd in
                              zip(s["balanced_accuracy"], s["balanced_accuracy_sd"].fillna(0))],
        metric: [f"{m:+.3f} ± {sd:.3f}" for m, sd in zip(s["bias"], s["bias_sd"].fillna(0))],
        f"|{metric}|": s["abs_bias"].map(lambda v: f"{v:.3f}"),
        "objective": s["objective"].map(lambda v: f"{v:.3f}"),
        "constraint met": s["constraint_met"].map(lambda v: "–" if v != v else
                                                  f"{100 * v:.0f} %"),
        "time (s)": s["seconds"].map(lambda v: f"{v:.2f}")})
    priv = out.config["debias"]["privileged_value"]
    text = (f"## Debiasing on {cohort.name}: protected {protected} (privileged {priv}), "
            f"{metric}, {seeds} seed(s), test split\n\n" + markdown_table(shown) + "\n")
    typer.echo(text)
    if output is not None:
        out.results.to_csv(output / "debias.csv", index=False)
        (output / "debias.md").write_text(text)
        (output / "config.json").write_text(json.dumps(out.config, indent=2, default=str))
        bias_scatter(out.results, output / "scatter.png", metric=metric,
                     title=f"{cohort.name}: {metric} vs balanced accuracy")
        say(f"wrote {output}/debias.csv, debias.md, config.json, scatter.png")


@app.command()
@friendly
def report(
    directory: Path = typer.Argument(..., help="The --output DIR of noharm run, audit or "
                                     "debias."),
    out: Optional[Path] = typer.Option(None, help="HTML file to write (default "
                                       "DIR/report.html)."),
) -> None:
    """Render DIR's tables and plots as one self-contained HTML file."""
    from .report.html import write_report
    if out is not None and out.is_dir():
        raise ConfigError(f"--out {out} is a directory; give a file name such as report.html.")
    try:
        path = write_report(directory, out)
    except OSError as exc:
        raise ConfigError(f"cannot write the report ({exc.strerror}: {exc.filename}); choose "
                          "another --out.") from None
    typer.echo(f"wrote {path}")


@data_app.command("list")
@friendly
def data_list() -> None:
    """List the built-in datasets and where their files resolve."""
    from .datasets import DATASETS
    for name, desc in DATASETS.items():
        typer.echo(f"{name:12s} {desc}")
    typer.echo(f"NOHARM_DATA_DIR={os.environ.get('NOHARM_DATA_DIR', '(unset)')}")


@data_app.command("mimic3")
@friendly
def data_mimic3(
    mimic_dir: Path = typer.Option(..., help="Folder of the MIMIC-III v1.4 CSV or CSV.gz files."),
    out: Path = typer.Option(..., help="Parquet file to write (e.g. cohort.parquet)."),
    memory_limit: str = typer.Option("2GB", help="DuckDB memory limit (spills to disk "
                                     "beyond it)."),
    threads: Optional[int] = typer.Option(None, help="DuckDB threads (default: all cores)."),
    overwrite: bool = typer.Option(False, help="Replace --out if it exists."),
    quiet: bool = typer.Option(False, help="No progress display."),
) -> None:
    """Build the in-hospital mortality cohort (first ICU stay > 48 h, adults) from raw
    MIMIC-III files with DuckDB; features from the first 48 hours."""
    from .datasets.mimic3 import build_mimic3_cohort
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


@data_app.command("show")
@friendly
def data_show(
    dataset: Optional[str] = DATASET,
    data: Optional[Path] = DATA,
    target: Optional[str] = TARGET,
    group: Optional[list[str]] = GROUP,
    data_path: Optional[Path] = DATA_PATH,
    dropna: bool = DROPNA,
) -> None:
    """Rows, features and subgroup sizes of a dataset."""
    cohort = _load_cohort(dataset, data, target, group, data_path, dropna, False, 800, 0)
    typer.echo(f"{cohort.name}: {len(cohort)} rows, {cohort.X.shape[1]} features")
    typer.echo(cohort.summary().to_string(index=False))

audit_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                        help="Audit personalization: BoP per subgroup, tests, bounds.")
app.add_typer(audit_app, name="audit")


def _load_saved(from_dir: Path, personalized: str, split: int):
    """Cohort, test rows and the two saved models of a ``noharm run --output`` directory."""
    from .models import NetClassifier
    cfg_file, splits_file = from_dir / "config.json", from_dir / "splits.json"
    if not cfg_file.is_file() or not splits_file.is_file():
        raise ConfigError(f"{from_dir} is not the --output of `noharm run` (needs config.json "
                          "and splits.json); run `noharm run ... --output DIR` first.")
    cfg = json.loads(cfg_file.read_text())
    src = cfg.get("data_source") or {}
    cohort = _load_cohort(src.get("dataset"), Path(src["data"]) if src.get("data") else None,
                          src.get("target"), src.get("group"),
                          Path(src["data_path"]) if src.get("data_path") else None,
                          bool(src.get("dropna")), bool(src.get("drop_group_columns")),
                          int(src.get("n_samples", 800)), int(src.get("random_state", 0)))
    splits = json.loads(splits_file.read_text())
    if not 0 <= split < len(splits):
        raise ConfigError(f"--split {split} does not exist; {from_dir} has outer splits "
                          f"0..{len(splits) - 1}.")
    models = []
    for name in ("generic", personalized):
        d = from_dir / "models" / name / f"split{split}"
        if not d.is_dir() and any((from_dir / "models" / name).glob(f"split{split}-part*")):
            raise ConfigError(f"{from_dir} saved {name} for split {split} in several ensemble "
                              "parts (more runs than ensemble_size); the audit reads one "
                              "ensemble per split: rerun with at most 25 runs.")
        if not d.is_dir():
            raise ConfigError(f"{from_dir} has no saved {name} model for split {split}; rerun "
                              f"`noharm run` with --models including {name} and --output.")
        models.append(NetClassifier.load(d))
    return cohort, np.asarray(splits[split]["test"]), models[0], models[1]


@audit_app.callback(invoke_without_command=True)
@friendly
def audit(
    ctx: typer.Context,
    dataset: Optional[str] = DATASET,
    data: Optional[Path] = DATA,
    target: Optional[str] = TARGET,
    group: Optional[list[str]] = GROUP,
    data_path: Optional[Path] = DATA_PATH,
    from_dir: Optional[Path] = typer.Option(None, "--from", help="Reuse the models of a "
                                            "`noharm run --output DIR`."),
    personalized: str = typer.Option("conditional-bias", help="hp: conditional-bias or "
                                     "decoupled (h0 is the generic model)."),
    split: int = typer.Option(0, help="Outer split whose test part is audited."),
    method: str = typer.Option("integrated_gradients", help="Attribution method: "
                               "integrated_gradients, input_x_gradient, saliency, "
                               "feature_ablation."),
    top_frac: float = typer.Option(0.4, help="Share of top-attributed features (r)."),
    no_explain: bool = typer.Option(False, help="Skip the explanation BoP."),
    eps: float = typer.Option(0.01, help="Smallest benefit worth detecting (bounds)."),
    alpha: float = typer.Option(0.05, help="Test level of the verdicts."),
    n_boot: int = typer.Option(1000, help="Bootstrap replicates."),
    seeds: int = typer.Option(5), folds: int = typer.Option(5),
    jobs: int = typer.Option(1, help="Processes for training (without --from)."),
    random_state: int = typer.Option(0),
    n_samples: int = typer.Option(800, help="Rows of the synthetic cohort."),
    dropna: bool = DROPNA,
    output: Optional[Path] = typer.Option(None, help="Directory for audit.csv, audit.md, "
                                          "forest.png, reliability.json."),
    overwrite: bool = typer.Option(False),
    quiet: bool = typer.Option(False),
) -> None:
    """Audit a personalized model against the generic one, per subgroup.

    Without --from it first trains both models with the protocol (seeds x folds runs on
    the training part of outer split 0) and audits their run-averaged predictions on the
    test part.  `noharm audit bounds` gives the reliability bounds alone.
    """
    if ctx.invoked_subcommand is not None:
        return
    import tempfile

    from ._validation import check_choice
    from .audit import ATTRIBUTION_METHODS, audit_models
    from .experiments import ProtocolConfig, run_protocol
    from .models import NetClassifier
    from .report import forest_plot, markdown_table

    check_choice(personalized, name="--personalized", choices=("conditional-bias",
                                                                "decoupled"))
    check_choice(method, name="--method", choices=tuple(ATTRIBUTION_METHODS))
    _check_output(output, overwrite)
    say = (lambda s: None) if quiet else (lambda s: typer.echo(s, err=True))
    if from_dir is not None:
        if dataset or data:
            raise ConfigError("--from reuses the data of that run; drop --dataset/--data.")
        cohort, test, h0, hp = _load_saved(from_dir, personalized, split)
    else:
        if split != 0:
            raise ConfigError("--split chooses among the outer splits of a saved run; without "
                              "--from the audit trains on outer split 0 only.")
        cohort = _load_cohort(dataset, data, target, group, data_path, dropna, False,
                              n_samples, random_state)
        cfg = ProtocolConfig(models=("generic", personalized), n_seeds=seeds, n_folds=folds,
                             random_state=random_state, n_jobs=jobs,
                             ensemble_size=max(25, seeds * folds))
        with tempfile.TemporaryDirectory() as tmp:
            say(f"training generic and {personalized} on {cohort.name} ...")
            res = run_protocol(cohort, cfg, progress=say, model_dir=tmp)
            test = np.asarray(res.splits[0]["test"])
            h0 = NetClassifier.load(Path(tmp) / "generic" / "split0")
            hp = NetClassifier.load(Path(tmp) / personalized / "split0")
    g = cohort.subgroups.to_numpy()[test]
    result = audit_models(h0, hp, cohort.X.iloc[test], cohort.y.iloc[test], sensitive_features=g,
                          explain=not no_explain, method=method, top_frac=top_frac,
                          n_boot=n_boot, alpha=alpha, eps=eps, random_state=random_state)
    shown = result.table.copy()
    for c in ("cost_h0", "cost_hp"):
        shown[c] = shown[c].map("{:.3f}".format)
    for c in ("bop", "ci_low", "ci_high"):
        shown[c] = shown[c].map("{:+.3f}".format)
    shown["p_value"] = shown["p_value"].map(lambda v: "–" if v != v else f"{v:.3g}")
    text = (f"## Audit: {personalized} (hp) vs generic (h0) on {cohort.name}, "
            f"{len(test)} test rows\n\n" + markdown_table(shown) + "\n\n"
            + "\n".join(result.summary_lines()) + "\n")
    typer.echo(text)
    if output is not None:
        result.table.to_csv(output / "audit.csv", index=False)
        (output / "audit.md").write_text(text)
        (output / "reliability.json").write_text(json.dumps(
            {"reliability": result.reliability, "family": result.family}, indent=2,
            default=str))
        forest_plot(result.table, output / "forest.png",
                    title=f"BoP of {personalized} vs generic ({cohort.name})")
        say(f"wrote {output}/audit.csv, audit.md, reliability.json, forest.png")


@audit_app.command("bounds")
@friendly
def audit_bounds(
    n: float = typer.Option(..., help="Rows of the dataset (e.g. 8e9)."),
    eps: float = typer.Option(0.01, help="Smallest benefit worth detecting."),
    sigma: Optional[float] = typer.Option(None, help="sd of a Gaussian BoP."),
    laplace_b: Optional[float] = typer.Option(None, help="Scale of a Laplace BoP."),
    k: Optional[int] = typer.Option(None, help="Show k = 1..K attributes."),
) -> None:
    """Lower bound on the error of any BoP test for k = 1..K attributes, and k_max."""
    from .audit import bounds_table
    from .report import markdown_table

    if k is not None and k < 1:
        raise ConfigError(f"--k must be >= 1, got {k}.")
    table, kmax = bounds_table(n, eps, sigma=sigma, laplace_b=laplace_b,
                               k_values=range(1, k + 1) if k else None)
    wide = table.pivot(index="k", columns="family", values="pe_lower_bound")
    wide.insert(0, "groups", [2 ** int(i) for i in wide.index])
    shown = wide.reset_index()
    for c in shown.columns[2:]:
        shown[c] = shown[c].map(lambda v: f"{v:.4f}")
    typer.echo(f"## P_e lower bound, n = {n:g}, eps = {eps:g} (equal groups)\n")
    typer.echo(markdown_table(shown))
    typer.echo("")
    for fam, v in kmax.items():
        typer.echo(f"k_max ({fam}) = {v:.2f}: at most {int(v)} binary attributes can be "
                   "validated")


def main() -> int:
    """Console-script entry point: usage errors too end as one line and exit code 2."""
    try:  # recent typer vendors click; older ones use the click package
        from typer._click import exceptions as cx
    except ImportError:  # pragma: no cover
        from click import exceptions as cx
    try:
        code = app(standalone_mode=False)
    except cx.UsageError as exc:
        typer.echo(f"error: {exc.format_message()}", err=True)
        return 2
    return code if isinstance(code, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
