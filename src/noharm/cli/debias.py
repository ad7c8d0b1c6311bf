"""``noharm debias``: every debiasing method on a standard network, compared."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from ._config import show_config
from ._data import DataSource
from ._errors import friendly
from ._options import (ExcludeOpt, ImputeOpt, KeepOpt, NamesOpt, NaValuesOpt, SepOpt,
                       BackendOpt, ConfigOpt, DataOpt, DataPathOpt, DatasetOpt, DropnaOpt,
                       ForceNewOpt, GroupOpt, HiddenLayersOpt, HiddenUnitsOpt, JobsOpt,
                       MaxEpochsOpt, NSamplesOpt, OuterSplitsOpt, OutputOpt, PatienceOpt,
                       PrintConfigOpt, QuietOpt, RandomStateOpt, SchedulerOpt, TargetOpt)
from ._study import parse_list, run_command

EXAMPLES = """
Examples:

  noharm debias --dataset heart --protected sex --methods pruning,reject_option

  noharm debias --dataset diabetes130 --protected race --metric eod --outer-splits 3
"""


@friendly
def debias(
    ctx: typer.Context,
    config: ConfigOpt = None,
    print_config: PrintConfigOpt = False,
    dataset: DatasetOpt = None, data: DataOpt = None, target: TargetOpt = None,
    group: GroupOpt = None, data_path: DataPathOpt = None,
    sep: SepOpt = None, names: NamesOpt = None, na_values: NaValuesOpt = None,
    exclude: ExcludeOpt = None, keep: KeepOpt = None, impute: ImputeOpt = "median",
    protected: Annotated[str, typer.Option(help="Protected attribute (a group column).")] = "sex",
    privileged: Annotated[Optional[str], typer.Option(
        help="Its privileged value (defaults: sex male, gender Male, race Caucasian, age "
        "young).")] = None,
    metric: Annotated[str, typer.Option(help="Bias metric: spd or eod.")] = "spd",
    methods: Annotated[Optional[str], typer.Option(
        help="Comma-separated subset of: random_perturbation, pruning, pruning_dynamic, "
        "adaptive_pruning, bias_gradient, engineered_gradient, adversarial, reject_option, "
        "eq_odds (default: all).")] = None,
    objective: Annotated[str, typer.Option(help="constrained (min |bias| s.t. BA >= rho) or "
                                           "indicator (BA * 1[|bias| < eps]).")] = "constrained",
    rho: Annotated[Optional[float], typer.Option(help="BA floor (default 0.95 x "
                                                 "original).")] = None,
    eps: Annotated[float, typer.Option(help="Bias tolerance of the indicator objective and of "
                                       "reject option classification.")] = 0.05,
    outer_splits: OuterSplitsOpt = 3, random_state: RandomStateOpt = 0,
    max_epochs: MaxEpochsOpt = 200, patience: PatienceOpt = 20,
    hidden_layers: HiddenLayersOpt = 6, hidden_units: HiddenUnitsOpt = 64,
    n_samples: NSamplesOpt = 800, dropna: DropnaOpt = False,
    jobs: JobsOpt = None, backend: BackendOpt = "joblib", scheduler: SchedulerOpt = None,
    output: OutputOpt = None, force_new: ForceNewOpt = False, quiet: QuietOpt = False,
) -> None:
    """Debias study (seed 004): a standard network per outer split, every method fitted on
    the guard rows, balanced accuracy, bias and time on the test rows."""
    if print_config:
        show_config(ctx)
        return
    from ..experiments import DebiasStudy
    from ..experiments.studies.debias import METHODS
    study = DebiasStudy(protected=protected, privileged=privileged, metric=metric,
                        methods=parse_list(methods) or METHODS, outer_splits=outer_splits,
                        random_state=random_state, objective=objective, rho=rho, eps=eps,
                        hidden_layers=hidden_layers, hidden_units=hidden_units,
                        max_epochs=max_epochs, patience=patience)
    source = DataSource.pick(locals())
    run_command(study, source, output=output, force_new=force_new, jobs=jobs,
                backend=backend, scheduler=scheduler, quiet=quiet, save_models=False)
