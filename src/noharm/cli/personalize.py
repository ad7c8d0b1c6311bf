"""``noharm personalize``: generic vs decoupled vs conditional bias, per subgroup."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from ._config import show_config
from ._data import DataSource
from ._errors import friendly
from ._options import DecimalOpt, GroupMissingOpt, PatientOpt, TestTargetOpt
from ._options import (ExcludeOpt, ImputeOpt, KeepOpt, NamesOpt, NaValuesOpt, SepOpt,
                       TestDataOpt, BackendOpt, BatchSizeOpt, ConfigOpt, DataOpt, DataPathOpt, DatasetOpt,
                       DropGroupColumnsOpt, DropnaOpt, ForceNewOpt, GroupOpt, HiddenLayersOpt,
                       HiddenUnitsOpt, JobsOpt, MaxEpochsOpt, NSamplesOpt,
                       OuterSplitsOpt, OutputOpt, PatienceOpt, PrintConfigOpt, QuietOpt,
                       RandomStateOpt, SchedulerOpt, TargetOpt)
from ._study import parse_list, run_command, say_fn

EXAMPLES = """
Examples:

  noharm personalize --dataset heart

  noharm personalize --dataset heart --outer-splits 5 --output results/heart

  noharm personalize --data my.csv --target outcome --group age:60 --group sex

  noharm personalize --dataset diabetes130 --target time_in_hospital --task regression
"""


@friendly
def personalize(
    ctx: typer.Context,
    config: ConfigOpt = None,
    print_config: PrintConfigOpt = False,
    dataset: DatasetOpt = None, data: DataOpt = None, target: TargetOpt = None,
    group: GroupOpt = None, data_path: DataPathOpt = None,
    sep: SepOpt = None, names: NamesOpt = None, na_values: NaValuesOpt = None,
    exclude: ExcludeOpt = None, keep: KeepOpt = None, impute: ImputeOpt = "median",
    decimal: DecimalOpt = None, group_missing: GroupMissingOpt = "error",
    patient: PatientOpt = None, test_target: TestTargetOpt = None,
    test_data: TestDataOpt = None,
    models: Annotated[Optional[str], typer.Option(
        help="Comma-separated models (default: generic,decoupled,conditional-bias,logreg,hgb;"
        " with --task regression linreg instead of logreg).")] = None,
    task: Annotated[str, typer.Option(help="classification (binary target) or regression "
                                      "(numeric target: squared error, MSE/MAE/R²).")
                    ] = "classification",
    seeds: Annotated[int, typer.Option(help="Seeds per fold (runs = seeds x folds).")] = 5,
    folds: Annotated[int, typer.Option(help="Cross-validation folds on the training part.")] = 5,
    outer_splits: OuterSplitsOpt = 1,
    test_size: Annotated[float, typer.Option(help="Test share of each outer split.")] = 0.2,
    jobs: JobsOpt = None, backend: BackendOpt = "joblib", scheduler: SchedulerOpt = None,
    ensemble_size: Annotated[int, typer.Option(help="Runs trained together as one batched "
                                               "ensemble (and stored together).")] = 25,
    output: OutputOpt = None, force_new: ForceNewOpt = False,
    max_epochs: MaxEpochsOpt = 200, patience: PatienceOpt = 20, batch_size: BatchSizeOpt = 64,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    hidden_layers: HiddenLayersOpt = 6, hidden_units: HiddenUnitsOpt = 64,
    attr_layers: Annotated[int, typer.Option(help="Depth of the attribute predictor.")] = 5,
    bias_layers: Annotated[int, typer.Option(help="K, bias vectors of the conditional-bias "
                                             "model.")] = 1,
    training: Annotated[str, typer.Option(help="two_stage or joint.")] = "two_stage",
    random_state: RandomStateOpt = 0, n_samples: NSamplesOpt = 800, dropna: DropnaOpt = False,
    drop_group_columns: DropGroupColumnsOpt = False,
    guard: Annotated[bool, typer.Option(help="Hold out guard rows of the training part, "
                                        "test personalization on them and add the "
                                        "reference and guarded rows (--no-guard: the "
                                        "paper's plain cross-validation).")] = True,
    guard_size: Annotated[float, typer.Option(help="Share of the training part held out "
                                              "as guard rows (no model fits on them).")
                          ] = 0.3,
    guard_min_n: Annotated[int, typer.Option(help="Subgroups with fewer guard patients "
                                             "(rows) keep the reference untested.")] = 20,
    reference: Annotated[str, typer.Option(help="best (a candidate must beat every "
                                           "generic model; the one with the lowest guard "
                                           "loss is the fallback), generic, logreg "
                                           "(linreg) or hgb.")] = "best",
    guard_metric: Annotated[Optional[str], typer.Option(
        help="The guard's paired test: log-loss (default), zero-one or auroc; squared-error "
        "with --task regression.")] = None,
    guard_alpha: Annotated[float, typer.Option(help="Family-wise error level of the guard "
                                               "(Holm over subgroups x candidates) and of "
                                               "the verdicts.")] = 0.05,
    margin: Annotated[float, typer.Option(help="0: personalize only where it is better; > 0: "
                                          "non-inferiority, unless worse by this much (loss "
                                          "units).")] = 0.0,
    quiet: QuietOpt = False,
) -> None:
    """Personalization study (seed 000): generic vs decoupled vs conditional bias vs
    logistic regression, per subgroup, over seeds x folds runs per outer split.

    With --output, every finished task is stored in DIR/results.db at once; running the
    same command again resumes where it stopped.
    """
    if print_config:
        show_config(ctx)
        return
    from ..experiments import PersonalizationStudy
    study = PersonalizationStudy(
        models=parse_list(models, "--models", "generic,conditional-bias") or None, task=task,
        n_seeds=seeds, n_folds=folds, outer_splits=outer_splits,
        test_size=test_size, random_state=random_state, hidden_layers=hidden_layers,
        hidden_units=hidden_units, lr=lr, batch_size=batch_size, max_epochs=max_epochs,
        patience=patience, attr_layers=attr_layers, n_bias=bias_layers, training=training,
        ensemble_size=ensemble_size, guard=guard, guard_size=guard_size,
        guard_min_n=guard_min_n, reference=reference,
        guard_metric=guard_metric, guard_alpha=guard_alpha, margin=margin)
    source = DataSource.pick(locals())
    result = run_command(study, source, output=output, force_new=force_new, jobs=jobs,
                         backend=backend, scheduler=scheduler, quiet=quiet)
    if output is not None and guard and task == "classification":
        export_guarded(result, output, say_fn(quiet))
    elif output is not None and guard:
        say_fn(quiet)("note: the guard's decisions are in results.csv (role guard); the "
                      "guarded regressor is not exported as one model (predict with "
                      "DIR/models/<model>/split<o>).")


def export_guarded(result, output, say) -> None:
    """``DIR/models/guarded/split<o>``: each outer split's deployable guarded model, built
    by the library from the stored certificate and the saved models."""
    from ..models.guarded import export_study_guard
    for outer, where in export_study_guard(result.results, output / "models",
                                           result.identity["options"]).items():
        if isinstance(where, str):
            say(f"note: the guarded model of split {outer} is not saved: {where}.")
