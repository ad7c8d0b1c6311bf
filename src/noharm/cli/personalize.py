"""``noharm personalize``: generic vs decoupled vs conditional bias, per subgroup."""
from __future__ import annotations

from typing import Annotated

import typer

from ._config import show_config
from ._data import DataSource
from ._errors import friendly
from ._options import (BackendOpt, BatchSizeOpt, ConfigOpt, DataOpt, DataPathOpt, DatasetOpt,
                       DropGroupColumnsOpt, DropnaOpt, ForceNewOpt, GroupOpt, HiddenLayersOpt,
                       HiddenUnitsOpt, JobsOpt, MaxEpochsOpt, ModelsOpt, NSamplesOpt,
                       OuterSplitsOpt, OutputOpt, PatienceOpt, PrintConfigOpt, QuietOpt,
                       RandomStateOpt, SchedulerOpt, TargetOpt)
from ._study import parse_list, run_command

EXAMPLES = """
Examples:

  noharm personalize --dataset heart

  noharm personalize --dataset heart --outer-splits 5 --output results/heart

  noharm personalize --data my.csv --target outcome --group age:60 --group sex
"""


@friendly
def personalize(
    ctx: typer.Context,
    config: ConfigOpt = None,
    print_config: PrintConfigOpt = False,
    dataset: DatasetOpt = None, data: DataOpt = None, target: TargetOpt = None,
    group: GroupOpt = None, data_path: DataPathOpt = None,
    models: ModelsOpt = "generic,decoupled,conditional-bias,logreg",
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
    harm_guard: Annotated[bool, typer.Option(help="Add harm-guard rows: per run and group, the "
                                             "personalized model only where the run's guard "
                                             "fold (which no model trained or early-stopped "
                                             "on) does not show it worse than generic.")] = False,
    guard_alpha: Annotated[float, typer.Option(help="Level of the harm guard's one-sided "
                                               "test.")] = 0.05,
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
        models=parse_list(models), n_seeds=seeds, n_folds=folds, outer_splits=outer_splits,
        test_size=test_size, random_state=random_state, hidden_layers=hidden_layers,
        hidden_units=hidden_units, lr=lr, batch_size=batch_size, max_epochs=max_epochs,
        patience=patience, attr_layers=attr_layers, n_bias=bias_layers, training=training,
        ensemble_size=ensemble_size, harm_guard=harm_guard, guard_alpha=guard_alpha)
    source = DataSource.pick(locals())
    run_command(study, source, output=output, force_new=force_new, jobs=jobs,
                backend=backend, scheduler=scheduler, quiet=quiet)
