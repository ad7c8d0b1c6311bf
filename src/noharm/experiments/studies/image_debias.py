"""The debias study on images (seed 004's setting: CNNs on chest X-rays).

Per outer split (split by patient when the cohort has ids) and seed, a CNN is trained on
the training rows with light augmentation and early-stopped on the early-stopping rows
(or the user's weights are loaded), every method is fitted on the guard rows, read as a
lazy ``Dataset`` batch by batch, and each result is measured on the test rows: the same
methods, table, ``summary.csv`` and report as the tabular debias study.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import ClassVar

from torch.utils.data import Subset

from ...datasets import Cohort
from ...datasets.images import ImageDataset, augment
from ...errors import ConfigError, DatasetError
from ...nn.backbones import ARCHS, build_backbone, load_backbone_weights
from ...training import TrainConfig
from ...training.single import fit_binary
from ..plan import Plan
from ..study import StudyData
from .debias import INTRA, DebiasStudy

#: smallest image side every architecture takes (five halvings leave >= 1 pixel)
MIN_SIDE = 32

#: Intra-processing methods that fine-tune (their step budget is ``finetune_steps``).
FINETUNE = ("bias_gradient", "engineered_gradient", "engineered_gradient_fixed",
            "adversarial", "adversarial_batch", "adaptive_pruning")


def _channels_of(path: str) -> int:
    """Input channels of a saved image network (its first convolution's weight)."""
    import os

    import torch
    if not os.path.isfile(path):
        return 1                          # load_backbone_weights names the missing file
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:                     # noqa: BLE001 - load_backbone_weights says why
        return 1
    convs = [v for k, v in state.items() if getattr(v, "dim", lambda: 0)() == 4] \
        if isinstance(state, dict) else []
    return int(convs[0].shape[1]) if convs else 1


@dataclass
class ImageDebiasStudy(DebiasStudy):
    title: ClassVar[str] = "debiasing methods on images"
    takes_images: ClassVar[bool] = True

    arch: str = "small"
    weights: str | None = None
    lr: float = 1e-3
    batch_size: int = 32
    max_epochs: int = 30
    patience: int = 8
    augment: bool = True
    finetune_steps: int = 50

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.arch not in ARCHS:
            raise ConfigError(f"unknown architecture {self.arch!r}; choose one of "
                              f"{', '.join(ARCHS)}.")
        TrainConfig(lr=self.lr, batch_size=self.batch_size, max_epochs=self.max_epochs,
                    patience=self.patience).validate()
        if self.weights is not None:       # fail before any work, naming the file
            load_backbone_weights(build_backbone(self.arch, _channels_of(self.weights)),
                                  self.weights)
        if self.finetune_steps < 1:
            raise ConfigError(f"finetune_steps must be >= 1, got {self.finetune_steps}.")

    def prepare(self, cohort: Cohort) -> StudyData:
        if cohort.meta.get("kind") != "images":
            raise DatasetError(f"{cohort.name} is not an image cohort; pass --images DIR "
                               "--metadata FILE or --dataset covid-cxr.")
        data = super().prepare(cohort)
        h, w = cohort.meta["image_size"]
        if min(h, w) < MIN_SIDE:
            raise DatasetError(f"images of {h} x {w} are too small for --arch {self.arch} "
                               f"(at least {MIN_SIDE} x {MIN_SIDE}); pass --image-size "
                               f"{MIN_SIDE} or more.")
        size = cohort.meta.get("resize")
        data.extra.update(channels=int(cohort.meta["channels"]),
                          resize=None if size is None else tuple(size))
        return data

    def network(self, data: StudyData, plan: Plan, outer: int, run: dict):
        channels = (data.extra["channels"] if self.weights is None
                    else _channels_of(self.weights))      # grey images feed RGB weights too
        ds = ImageDataset(data.X["file"].to_numpy(), channels, data.extra["resize"])
        net = build_backbone(self.arch, channels)
        if self.weights is not None:
            load_backbone_weights(net, self.weights)
        else:
            config = TrainConfig(lr=self.lr, batch_size=self.batch_size,
                                 max_epochs=self.max_epochs, patience=self.patience)
            fit_binary(net, ds, data.y, run["train"], run["early_stop"], config=config,
                       seed=run["model_seed"], device=self.device,
                       augment=augment if self.augment else None)
        return (net, Subset(ds, plan.rows(outer, "guard").tolist()),
                Subset(ds, plan.rows(outer, "test").tolist()))

    def method_options(self, method: str) -> dict:
        opts: dict = {}
        params = inspect.signature(INTRA[method][0]).parameters
        if method in FINETUNE:
            opts.update(n_steps=self.finetune_steps, eval_every=max(1, self.finetune_steps // 10),
                        batch_size=self.batch_size)
        if "batch_size" in params and "batch_size" not in opts:
            opts["batch_size"] = max(self.batch_size, 64)
        return opts
