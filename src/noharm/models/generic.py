"""The generic model: one MLP for everyone (DESIGN §3)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..nn import EnsembleMLP, Standardize
from ..training import TrainReport, fit_members
from .base import NetClassifier, weighted_mean


class ScaledMLP(nn.Module):
    """Standardisation followed by an :class:`~noharm.nn.EnsembleMLP` with one logit."""

    def __init__(self, seeds: list[int], n_features: int, hidden: list[int], dropout: float,
                 **inputs):
        super().__init__()
        self.scale = Standardize(len(seeds), n_features, **inputs)
        self.mlp = EnsembleMLP(seeds, self.scale.n_out, hidden, 1, dropout)

    def set_generator(self, g: torch.Generator | None) -> None:
        self.mlp.generator = g

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.scale(x))[0].squeeze(-1)         # (E, B)


def bce_loss(net: nn.Module, pointwise=None):
    """Per-member weighted loss of a module returning outputs (E, B): BCE on the logits,
    or ``pointwise(out, y)`` (e.g. the regressors' squared error)."""
    def loss(x, batch, w):
        out = net(x)
        ll = (pointwise(out, batch["y"]) if pointwise is not None else
              F.binary_cross_entropy_with_logits(out, batch["y"], reduction="none"))
        return weighted_mean(ll, w)
    return loss


def unscale(net: nn.Module, out: torch.Tensor) -> torch.Tensor:
    """A regressor's outputs in target units (classifier logits pass unchanged)."""
    if hasattr(net, "y_scale"):
        return out * net.y_scale + net.y_mean
    return out


class GenericClassifier(NetClassifier):
    """Generic MLP classifier: Linear -> BatchNorm -> ReLU -> Dropout blocks, sigmoid output.

    Parameters
    ----------
    hidden_layers : int, default 6
    hidden_units : int, default 64
    dropout : float, default 0.2
    lr : float, default 1e-3 (Adam)
    batch_size : int, default 64
    max_epochs : int, default 200
    patience : int, default 20 (early stopping on the validation loss, best checkpoint restored)
    weight_decay : float, default 0.0
    validation_fraction : float, default 0.2 (held out by :meth:`fit` for early stopping)
    random_state : int, default 0
    n_threads : int, default 1 (torch threads while training)
    impute : {"median", "none"}, default "median"
        Missing values (NaN): filled with the training rows' median, with a 0/1 missing
        indicator input per column that had gaps in training ("none": NaN is an error).

    ``sensitive_features`` is accepted and ignored: the model needs no group.
    """

    def __init__(self, hidden_layers: int = 6, hidden_units: int = 64, dropout: float = 0.2,
                 lr: float = 1e-3, batch_size: int = 64, max_epochs: int = 200,
                 patience: int = 20, weight_decay: float = 0.0,
                 validation_fraction: float = 0.2, random_state: int = 0, n_threads: int = 1,
                 impute: str = "median"):
        self.hidden_layers = hidden_layers
        self.hidden_units = hidden_units
        self.dropout = dropout
        self.lr = lr
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.n_threads = n_threads
        self.impute = impute

    def _build(self, n_members: int, seeds: list[int]) -> nn.Module:
        return ScaledMLP(seeds, self.n_features_in_, [self.hidden_units] * self.hidden_layers,
                         self.dropout, **self._input_kw())

    def _train(self, X, y, codes, groups, train_idx, val_idx, seeds) -> TrainReport:
        net = self._build(len(seeds), seeds)
        net.scale.fit_rows(X, train_idx)
        self._fit_target(net, y, train_idx)
        self.net_ = net
        return fit_members(net, bce_loss(net, self._pointwise(net)), X, {"y": y.float()},
                           train_idx, val_idx, seeds, self._train_config(),
                           set_generator=net.set_generator)

    def _run_logits(self, X: torch.Tensor, codes: np.ndarray | None) -> torch.Tensor:
        E = self.net_.scale.mean.shape[0]
        return unscale(self.net_, self.net_(X.unsqueeze(0).expand(E, -1, -1)))
