"""``noharm debias``: every debiasing method on a standard network, compared."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._config import show_config
from ._data import DataSource
from ._errors import friendly
from ._options import DecimalOpt, GroupMissingOpt
from ._options import (ExcludeOpt, ImputeOpt, KeepOpt, NamesOpt, NaValuesOpt, SepOpt,
                       BackendOpt, ConfigOpt, DataOpt, DataPathOpt, DatasetOpt, DropnaOpt,
                       ForceNewOpt, GroupOpt, HiddenLayersOpt, HiddenUnitsOpt, JobsOpt,
                       NSamplesOpt, OuterSplitsOpt, OutputOpt,
                       PrintConfigOpt, QuietOpt, RandomStateOpt, SchedulerOpt, TargetOpt)
from ._study import parse_list, refuse_options, run_command

EXAMPLES = """
Examples:

  noharm debias --dataset heart --protected sex --methods pruning,reject_option

  noharm debias --dataset diabetes130 --protected race --metric eod --outer-splits 3

  noharm debias --dataset covid-cxr --protected sex --seeds 3

  noharm debias --images xrays/ --metadata xrays/meta.csv --target finding==COVID-19 \
      --protected sex --patient patient_id --arch resnet18 --device auto
"""

#: options that only an image cohort uses, and only a table
IMAGE_ONLY = ("arch", "weights", "lr", "batch_size", "finetune_steps", "augment", "device")
TABLE_ONLY = ("hidden_layers", "hidden_units")


@friendly
def debias(
    ctx: typer.Context,
    config: ConfigOpt = None,
    print_config: PrintConfigOpt = False,
    dataset: DatasetOpt = None, data: DataOpt = None, target: TargetOpt = None,
    group: GroupOpt = None, data_path: DataPathOpt = None,
    sep: SepOpt = None, names: NamesOpt = None, na_values: NaValuesOpt = None,
    exclude: ExcludeOpt = None, keep: KeepOpt = None, impute: ImputeOpt = "median",
    decimal: DecimalOpt = None, group_missing: GroupMissingOpt = "error",
    protected: Annotated[str, typer.Option(help="Protected attribute (a group column).")] = "sex",
    privileged: Annotated[Optional[str], typer.Option(
        help="Its privileged value (defaults: sex male, gender Male, race Caucasian, age "
        "young).")] = None,
    metric: Annotated[str, typer.Option(help="Bias metric: spd or eod.")] = "spd",
    methods: Annotated[Optional[str], typer.Option(
        help="Comma-separated subset of: random_perturbation, pruning, pruning_dynamic, "
        "adaptive_pruning, cluster_pruning, bias_gradient, engineered_gradient, "
        "engineered_gradient_fixed, adversarial, adversarial_batch, reject_option, eq_odds "
        "(default: all).")] = None,
    objective: Annotated[str, typer.Option(help="constrained (min |bias| s.t. BA >= rho) or "
                                           "indicator (BA * 1[|bias| < eps]).")] = "constrained",
    rho: Annotated[Optional[float], typer.Option(help="BA floor (default 0.95 x "
                                                 "original).")] = None,
    eps: Annotated[float, typer.Option(help="Bias tolerance of the indicator objective and of "
                                       "reject option classification.")] = 0.05,
    images: Annotated[Optional[Path], typer.Option(
        help="Folder of your images (with --metadata, --target, --protected).")] = None,
    metadata: Annotated[Optional[Path], typer.Option(
        help="CSV with one row per image: its file (relative to --images), the target and "
        "the protected attribute.")] = None,
    patient: Annotated[Optional[str], typer.Option(
        help="Patient id column: images of one patient stay in one split.")] = None,
    file_column: Annotated[str, typer.Option(help="Column of the image file names.")] = "file",
    image_size: Annotated[Optional[int], typer.Option(
        help="Resize every image to N x N (needed when sizes differ).")] = None,
    arch: Annotated[str, typer.Option(
        help="Image network: small, vgg11, vgg16 or resnet18 (no downloaded weights).")
    ] = "small",
    weights: Annotated[Optional[Path], typer.Option(
        help="Debias your own trained image network: its state dict (torch.save(model."
        "state_dict())), of --arch with one output logit; no training.")] = None,
    lr: Annotated[float, typer.Option(help="Image network: Adam learning rate.")] = 1e-3,
    batch_size: Annotated[int, typer.Option(help="Image network: mini-batch size.")] = 32,
    finetune_steps: Annotated[int, typer.Option(
        help="Images: steps of the fine-tuning methods.")] = 50,
    augment: Annotated[bool, typer.Option(
        help="Images: random shifts (8 px) and left-right flips in training.")] = True,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "cpu",
    seeds: Annotated[int, typer.Option(
        help="Networks per outer split (each seeded, each debiased).")] = 1,
    outer_splits: OuterSplitsOpt = 3, random_state: RandomStateOpt = 0,
    max_epochs: Annotated[Optional[int], typer.Option(
        help="Most training epochs (default 200 for tables, 30 for images).")] = None,
    patience: Annotated[Optional[int], typer.Option(
        help="Early-stopping patience in epochs (default 20 for tables, 8 for images).")
    ] = None,
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
    from ..experiments import DebiasStudy, ImageDebiasStudy
    from ..experiments.studies.debias import METHODS
    source = DataSource.pick(locals())
    common = dict(protected=protected, privileged=privileged, metric=metric,
                  methods=parse_list(methods, "--methods", "pruning,eq_odds") or METHODS,
                  outer_splits=outer_splits,
                  random_state=random_state, objective=objective, rho=rho, eps=eps,
                  n_seeds=seeds, device=device)
    if source.is_images:
        refuse_options(ctx, TABLE_ONLY, "an image cohort")
        study = ImageDebiasStudy(**common, arch=arch, lr=lr, batch_size=batch_size,
                                 weights=None if weights is None else str(weights.resolve()),
                                 finetune_steps=finetune_steps, augment=augment,
                                 max_epochs=30 if max_epochs is None else max_epochs,
                                 patience=8 if patience is None else patience)
    else:
        refuse_options(ctx, IMAGE_ONLY, "a table (they are for --images or --dataset "
                       "covid-cxr)")
        study = DebiasStudy(**common, hidden_layers=hidden_layers, hidden_units=hidden_units,
                            max_epochs=200 if max_epochs is None else max_epochs,
                            patience=20 if patience is None else patience)
    run_command(study, source, output=output, force_new=force_new, jobs=jobs,
                backend=backend, scheduler=scheduler, quiet=quiet, save_models=False)
