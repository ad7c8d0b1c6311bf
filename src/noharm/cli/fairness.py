"""``noharm fairness``: generic vs FairGrad over several sensitive attributes."""
from __future__ import annotations

from typing import Annotated

import typer

from ._config import show_config
from ._data import DataSource
from ._errors import friendly
from ._options import DecimalOpt, GroupMissingOpt, PatientOpt
from ._options import (ExcludeOpt, ImputeOpt, KeepOpt, NamesOpt, NaValuesOpt, SepOpt,
                       BackendOpt, ConfigOpt, DataOpt, DataPathOpt, DatasetOpt,
                       DropGroupColumnsOpt, DropnaOpt, ForceNewOpt, GroupOpt, HiddenLayersOpt,
                       HiddenUnitsOpt, JobsOpt, MaxEpochsOpt, ModelsOpt, NSamplesOpt,
                       OuterSplitsOpt, OutputOpt, PatienceOpt, PrintConfigOpt, QuietOpt,
                       RandomStateOpt, SchedulerOpt, SensitiveOpt, TargetOpt)
from ._study import parse_floats, parse_list, run_command

EXAMPLES = """
Examples:

  noharm fairness --dataset diabetes130 --sensitive race,gender,age

  noharm fairness --dataset heart --sensitive age,sex --fairness-loss eod
"""


@friendly
def fairness(
    ctx: typer.Context,
    config: ConfigOpt = None,
    print_config: PrintConfigOpt = False,
    dataset: DatasetOpt = None, data: DataOpt = None, target: TargetOpt = None,
    group: GroupOpt = None, data_path: DataPathOpt = None,
    sep: SepOpt = None, names: NamesOpt = None, na_values: NaValuesOpt = None,
    exclude: ExcludeOpt = None, keep: KeepOpt = None, impute: ImputeOpt = "median",
    decimal: DecimalOpt = None, group_missing: GroupMissingOpt = "error",
    patient: PatientOpt = None,
    models: ModelsOpt = "generic,fairgrad", sensitive: SensitiveOpt = None,
    fairness_loss: Annotated[str, typer.Option(help="eqodds, eod or spd.")] = "eqodds",
    projection: Annotated[str, typer.Option(help="conflict or always.")] = "conflict",
    fairness_weights: Annotated[str, typer.Option(
        help="auto: one network per common weight in 0,0.03,0.1,0.3,1, keep the largest "
        "whose validation AUROC is within --auroc-tolerance of the weight-0 one; or one "
        "weight per sensitive attribute, comma-separated (1,1,1: the paper's setting).")
    ] = "auto",
    auroc_tolerance: Annotated[float, typer.Option(
        help="With --fairness-weights auto: the AUROC the kept weight may lose on "
        "validation rows.")] = 0.01,
    balance: Annotated[str, typer.Option(
        help="none: weights multiply the losses (the paper's form); clip: the prediction "
        "gradient is never projected and each fairness gradient is at most weight x its "
        "norm.")] = "none",
    outer_splits: OuterSplitsOpt = 3, random_state: RandomStateOpt = 0,
    max_epochs: MaxEpochsOpt = 200, patience: PatienceOpt = 20,
    hidden_layers: HiddenLayersOpt = 6, hidden_units: HiddenUnitsOpt = 64,
    n_samples: NSamplesOpt = 800, dropna: DropnaOpt = False,
    drop_group_columns: DropGroupColumnsOpt = False,
    jobs: JobsOpt = None, backend: BackendOpt = "joblib", scheduler: SchedulerOpt = None,
    output: OutputOpt = None, force_new: ForceNewOpt = False, quiet: QuietOpt = False,
) -> None:
    """Fairness study (seed 002): generic vs FairGrad (gradient projection over several
    sensitive attributes); per attribute the worst pairwise equal-opportunity and
    equalized-odds gaps on test rows, accuracy, AUROC, seconds per epoch."""
    if print_config:
        show_config(ctx)
        return
    from ..experiments import FairnessStudy
    study = FairnessStudy(sensitive=parse_list(sensitive, "--sensitive", "age,sex"),
                          models=parse_list(models, "--models", "generic,fairgrad"),
                          outer_splits=outer_splits, random_state=random_state,
                          fairness_loss=fairness_loss, projection=projection, balance=balance,
                          fairness_weights="auto" if fairness_weights == "auto" else
                          parse_floats(fairness_weights, "--fairness-weights"),
                          auroc_tolerance=auroc_tolerance,
                          hidden_layers=hidden_layers, hidden_units=hidden_units,
                          max_epochs=max_epochs, patience=patience)
    source = DataSource.pick(locals())
    run_command(study, source, output=output, force_new=force_new, jobs=jobs,
                backend=backend, scheduler=scheduler, quiet=quiet)
