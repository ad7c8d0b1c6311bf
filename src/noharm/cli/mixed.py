"""``noharm mixed``: generic vs MEDL vs fair MEDL on clustered data."""
from __future__ import annotations

from typing import Annotated

import typer

from ._config import show_config
from ._data import DataSource
from ._errors import friendly
from ._options import DecimalOpt, GroupMissingOpt, PatientOpt
from ._options import (ExcludeOpt, ImputeOpt, KeepOpt, NamesOpt, NaValuesOpt, SepOpt,
                       BackendOpt, BatchSizeOpt, ConfigOpt, DataOpt, DataPathOpt, DatasetOpt,
                       DropGroupColumnsOpt, DropnaOpt, ForceNewOpt, GroupOpt, HiddenLayersOpt,
                       HiddenUnitsOpt, JobsOpt, MaxEpochsOpt, ModelsOpt, NSamplesOpt,
                       OuterSplitsOpt, OutputOpt, PatienceOpt, PrintConfigOpt, QuietOpt,
                       RandomStateOpt, SchedulerOpt, SensitiveOpt, TargetOpt)
from ._study import parse_list, run_command

EXAMPLES = """
Examples:

  noharm mixed --dataset diabetes130 --clusters admission_source_id --sensitive race,gender,age

  noharm mixed --data sites.csv --target y --group age:60 --group sex --clusters site
"""


@friendly
def mixed(
    ctx: typer.Context,
    clusters: Annotated[str, typer.Option(help="Cluster column of the data, or the prefix "
                                          "of its one-hot columns (e.g. "
                                          "admission_source_id).")],
    config: ConfigOpt = None,
    print_config: PrintConfigOpt = False,
    dataset: DatasetOpt = None, data: DataOpt = None, target: TargetOpt = None,
    group: GroupOpt = None, data_path: DataPathOpt = None,
    sep: SepOpt = None, names: NamesOpt = None, na_values: NaValuesOpt = None,
    exclude: ExcludeOpt = None, keep: KeepOpt = None, impute: ImputeOpt = "median",
    decimal: DecimalOpt = None, group_missing: GroupMissingOpt = "error",
    patient: PatientOpt = None,
    models: ModelsOpt = "generic,medl,fair-medl", sensitive: SensitiveOpt = None,
    task: Annotated[str, typer.Option(help="classification or regression.")] = "classification",
    unseen_share: Annotated[float, typer.Option(help="Share of rows in clusters held out as "
                                                "unseen.")] = 0.1,
    adversary_weight: Annotated[float, typer.Option(help="Weight of the cluster "
                                                    "adversary.")] = 0.1,
    kl_weight: Annotated[float, typer.Option(help="Weight of the random effects' KL "
                                             "term.")] = 1e-3,
    fairness_weight: Annotated[float, typer.Option(help="Weight of the fairness adversaries "
                                                   "(fair-medl).")] = 1.0,
    outer_splits: OuterSplitsOpt = 3, random_state: RandomStateOpt = 0,
    max_epochs: MaxEpochsOpt = 200, patience: PatienceOpt = 20, batch_size: BatchSizeOpt = 64,
    hidden_layers: HiddenLayersOpt = 3, hidden_units: HiddenUnitsOpt = 64,
    n_samples: NSamplesOpt = 800, dropna: DropnaOpt = False,
    drop_group_columns: DropGroupColumnsOpt = False,
    jobs: JobsOpt = None, backend: BackendOpt = "joblib", scheduler: SchedulerOpt = None,
    output: OutputOpt = None, force_new: ForceNewOpt = False, quiet: QuietOpt = False,
) -> None:
    """Mixed-effects study (seed 003): generic vs MEDL vs fair MEDL, on seen and unseen
    clusters, with fairness per sensitive attribute."""
    if print_config:
        show_config(ctx)
        return
    from ..experiments import MixedStudy
    study = MixedStudy(clusters=clusters,
                       sensitive=parse_list(sensitive, "--sensitive", "age,sex"),
                       models=parse_list(models, "--models", "generic,medl,fair-medl"),
                       task=task, outer_splits=outer_splits,
                       random_state=random_state, unseen_share=unseen_share,
                       hidden_layers=hidden_layers, hidden_units=hidden_units,
                       batch_size=batch_size, max_epochs=max_epochs, patience=patience,
                       adversary_weight=adversary_weight, kl_weight=kl_weight,
                       fairness_weight=fairness_weight)
    source = DataSource.pick(locals())
    run_command(study, source, output=output, force_new=force_new, jobs=jobs,
                backend=backend, scheduler=scheduler, quiet=quiet, save_models=False)
