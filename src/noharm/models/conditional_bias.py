"""The conditional-bias model (DESIGN §3): group information modulates one joint
network through bias vectors and is not needed at prediction time."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .._validation import check_choice, check_fraction, check_positive_int
from ..errors import ConfigError, GroupError
from ..nn import ConditionalBiasNet
from ..training import TrainReport, fit_members, set_threads
from .base import weighted_mean
from .generic import GenericClassifier, unscale

TRAINING_MODES = ("two_stage", "joint")


def attribute_loss(net: ConditionalBiasNet):
    """Stage 1: weighted cross-entropy of the attribute predictor on the subgroup codes."""
    def loss(x, batch, w):
        logits = net.attribute_logits(x)
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["g"].reshape(-1),
                             reduction="none").view(logits.shape[:2])
        return weighted_mean(ce, w)
    return loss


def label_loss(net: ConditionalBiasNet, attr_weight: float = 0.0, pointwise=None):
    """Stage 2 (attr_weight = 0) or joint loss: BCE (or ``pointwise``) + attr_weight * CE."""
    def loss(x, batch, w):
        logit, attr_logits = net(x)
        bce = (pointwise(logit.squeeze(-1), batch["y"]) if pointwise is not None else
               F.binary_cross_entropy_with_logits(logit.squeeze(-1), batch["y"],
                                                  reduction="none"))
        total = weighted_mean(bce, w)
        if attr_weight:
            ce = F.cross_entropy(attr_logits.reshape(-1, attr_logits.shape[-1]),
                                 batch["g"].reshape(-1), reduction="none").view(logit.shape[:2])
            total = total + attr_weight * weighted_mean(ce, w)
        return total
    return loss


class ConditionalBiasClassifier(GenericClassifier):
    """Conditional-bias classifier of "Towards personalized healthcare without harm
    via bias modulation".

    An attribute predictor (MLP, ``attr_layers`` x ``attr_units``) learns to predict
    the subgroup from X; its last ``n_bias`` hidden activations are the embeddings.
    Embedding k passes Linear + ReLU to give a bias vector that is added to the
    pre-activation (after BatchNorm, before ReLU) of the label network's
    k-th-from-last hidden layer.  The label network is the generic MLP.

    Parameters
    ----------
    attr_layers : int, default 5
        Depth of the attribute predictor (the paper's "50-layer" is a parameter here).
    attr_units : int, default 64
    n_bias : int, default 1
        K, the number of bias vectors (1 <= K <= min(hidden_layers, attr_layers)).
    training : {"two_stage", "joint"}, default "two_stage"
        ``two_stage``: train the attribute predictor, freeze it, then train the label
        network and bias projections.  ``joint``: train everything on
        BCE + ``attr_weight`` * CE.
    attr_weight : float, default 1.0
        Weight of the attribute loss in ``joint`` mode.
    **generic parameters
        As :class:`GenericClassifier`.

    Notes
    -----
    ``sensitive_features`` is required by :meth:`fit` (it supervises the attribute
    predictor) and not needed for prediction (ignored if given).
    """

    requires_groups_fit = True
    requires_groups_predict = False

    def __init__(self, hidden_layers: int = 6, hidden_units: int = 64, dropout: float = 0.2,
                 lr: float = 1e-3, batch_size: int = 64, max_epochs: int = 200,
                 patience: int = 20, weight_decay: float = 0.0,
                 validation_fraction: float = 0.2, random_state: int = 0, n_threads: int = 1,
                 impute: str = "median",
                 attr_layers: int = 5, attr_units: int = 64, n_bias: int = 1,
                 training: str = "two_stage", attr_weight: float = 1.0):
        super().__init__(hidden_layers=hidden_layers, hidden_units=hidden_units, dropout=dropout,
                         lr=lr, batch_size=batch_size, max_epochs=max_epochs, patience=patience,
                         weight_decay=weight_decay, validation_fraction=validation_fraction,
                         random_state=random_state, n_threads=n_threads, impute=impute)
        self.attr_layers = attr_layers
        self.attr_units = attr_units
        self.n_bias = n_bias
        self.training = training
        self.attr_weight = attr_weight

    def _check_params(self) -> None:
        super()._check_params()
        check_positive_int(self.attr_layers, name="attr_layers")
        check_positive_int(self.attr_units, name="attr_units")
        check_positive_int(self.n_bias, name="n_bias")
        check_choice(self.training, name="training", choices=TRAINING_MODES)
        check_fraction(self.attr_weight, name="attr_weight", high=1e6)
        if self.n_bias > min(self.hidden_layers, self.attr_layers):
            raise ConfigError(
                f"n_bias={self.n_bias} needs at least that many hidden layers in both networks "
                f"(hidden_layers={self.hidden_layers}, attr_layers={self.attr_layers}); "
                "lower n_bias or add layers.")

    def _build(self, n_members: int, seeds: list[int]) -> ConditionalBiasNet:
        return ConditionalBiasNet(
            seeds, self.n_features_in_, max(len(self.groups_), 1),
            label_hidden=[self.hidden_units] * self.hidden_layers,
            attr_hidden=[self.attr_units] * self.attr_layers, n_bias=self.n_bias,
            dropout=self.dropout, **self._input_kw())

    def _train(self, X, y, codes, groups, train_idx, val_idx, seeds) -> dict:
        if len(self.groups_) < 2:
            raise GroupError("ConditionalBiasClassifier needs at least 2 subgroups in "
                             f"sensitive_features, got {self.groups_}.")
        net = self._build(len(seeds), seeds)
        net.scale.fit_rows(X, train_idx)
        self._fit_target(net, y, train_idx)
        self.net_ = net
        arrays = {"y": y.float(), "g": torch.from_numpy(codes)}
        cfg = self._train_config()
        if self.training == "two_stage":
            stage1 = self.fit_attribute_predictor(X, arrays, train_idx, val_idx, seeds)
            stage2 = self.fit_label_network(X, arrays, train_idx, val_idx, seeds)
            return {"stage1": stage1, "stage2": stage2}
        _set_trainable(net, attr=True, label=True)
        net.freeze_attr = False
        report = fit_members(net, label_loss(net, self.attr_weight, self._pointwise(net)), X,
                             arrays, train_idx,
                             val_idx, seeds, cfg, set_generator=net.set_generator)
        return {"joint": report}

    def fit_attribute_predictor(self, X, arrays, train_idx, val_idx, seeds) -> TrainReport:
        """Stage 1 of ``two_stage``: train only the attribute predictor (cross-entropy)."""
        net = self.net_
        net.freeze_attr = False
        _set_trainable(net, attr=True, label=False)
        return fit_members(net, attribute_loss(net), X, arrays, train_idx, val_idx,
                           [s + 50_000 for s in seeds], self._train_config(),
                           set_generator=net.set_generator)

    def fit_label_network(self, X, arrays, train_idx, val_idx, seeds) -> TrainReport:
        """Stage 2 of ``two_stage``: attribute predictor frozen (eval mode, no gradient)."""
        net = self.net_
        net.freeze_attr = True
        _set_trainable(net, attr=False, label=True)
        return fit_members(net, label_loss(net, pointwise=self._pointwise(net)), X, arrays,
                           train_idx, val_idx, seeds,
                           self._train_config(), set_generator=net.set_generator)

    def _run_logits(self, X: torch.Tensor, codes: np.ndarray | None) -> torch.Tensor:
        E = self.net_.scale.mean.shape[0]
        return unscale(self.net_, self.net_(X.unsqueeze(0).expand(E, -1, -1))[0].squeeze(-1))

    def predict_groups(self, X) -> np.ndarray:
        """The attribute predictor's subgroup prediction (first run)."""
        self._check_fitted()
        Xa, _ = self._inputs(X, None, fitting=False)
        self.net_.eval()
        with torch.no_grad(), set_threads(self.n_threads):
            logits = self.net_.attribute_logits(torch.from_numpy(Xa).unsqueeze(0).expand(
                self.n_runs_, -1, -1))[0]
        return np.array(self.groups_)[logits.argmax(-1).numpy()]


def _set_trainable(net: ConditionalBiasNet, *, attr: bool, label: bool) -> None:
    for p in net.attr.parameters():
        p.requires_grad_(attr)
    for p in list(net.label.parameters()) + list(net.proj.parameters()):
        p.requires_grad_(label)
