"""Fair mixed-effects deep learning (MEDL), for classification and regression.

After the ARMED framework and its fair extension (Nguyen, Wang & Montillo; DESIGN §5):

* a fixed-effects (FE) MLP sees only the features;
* a **cluster adversary** predicts the cluster (e.g. hospital site) from the FE
  net's concatenated hidden activations; adversary and net are updated in
  alternation (adversary step, then main step), and the main loss is rewarded for
  fooling it: ``- adversary_weight * min(CE, 2 log C)``;
* a **random-effects** layer of per-cluster slopes and intercept on the standardised
  features, with a factorised Gaussian variational posterior (reparameterization
  while training, posterior means for prediction) and KL to ``N(0, prior_sd²)``
  weighted by ``kl_weight`` per cluster: ``kl_weight * KL / C``;
* mixed output = FE output + x·slope(cluster) + intercept(cluster); the loss trains
  both the mixed and the FE outputs, so the FE output alone serves **unseen
  clusters** (their rows get no random effect);
* **fairness adversaries** (one per sensitive attribute, on each of the FE, mixed and
  random-effects outputs, as seed 003; the RE output is the mixed minus the FE output,
  x·slope + intercept) predict the attribute from (prediction, y) — the equalized-odds view —
  and the net is rewarded for fooling them with ``fairness_weight``
  (0 gives plain MEDL).

Training goes through :func:`noharm.training.fit_members` (one member; the
adversary update is its ``adversary`` hook); early stopping uses the mixed + FE
task loss on the validation rows.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from .._validation import (align_features, check_binary_y, check_clusters, check_positive_int,
                           check_sensitive_frame, check_X)
from ..errors import ConfigError, PersistenceError, TargetError
from .base import NotFittedError
from ..nn.mixed import Adversary, MixedEffectsNet
from ..training import TrainConfig, TrainReport, fit_members, set_threads
from .base import (changed_config, check_mlp_params, load_weights, missing_columns,
                   read_model_config, train_val_split, weighted_mean, write_model)


class SmallClusterWarning(UserWarning):
    """Some clusters have too few rows for a random effect; they use fixed effects only."""


class _MixedEffectsBase(BaseEstimator):
    """Shared parameters and training of the mixed-effects estimators.

    Parameters
    ----------
    hidden_layers, hidden_units : int, default 3, 64
        Fixed-effects MLP (Linear -> BatchNorm -> ReLU -> Dropout blocks).
    dropout : float, default 0.2
    lr, batch_size, max_epochs, patience : as the other noharm models (Adam, early stopping
        on the validation task loss with best-checkpoint restore).
    validation_fraction : float, default 0.2
        Rows held out (stratified by cluster, and label for classification) for early
        stopping.
    adversary_weight : float, default 0.1
        Weight of the cluster adversary's reward (0: no cluster adversary).
    kl_weight : float, default 1e-3
        Weight of the random effects' KL term.  Each step adds ``kl_weight * KL / C`` (C
        the number of seen clusters) to the batch's mean loss: the KL is scaled per
        cluster, not per training row as in a per-row ELBO (``KL / n_train``), so its
        weight does not shrink as the data grow.
    prior_sd : float, default 0.1
        sd of the N(0, prior_sd²) prior of every random slope and intercept.
    fairness_weight : float, default 0.0
        Weight of the fairness adversaries' reward; > 0 needs ``sensitive_features``.
    adversary_lr, adversary_units : float, int, default 1e-3, 32
        Adam learning rate and width of the adversaries.
    min_cluster_size : int, default 2
        Smaller clusters get no random effect (with a :class:`SmallClusterWarning`).
    random_effects : bool, default True
        False trains the fixed-effects network alone (the generic baseline).
    random_state : int, default 0
    n_threads : int, default 1
        torch threads while training and predicting.
    impute : {"median", "none"}, default "median"
        Missing values: training medians plus a missing-indicator input per column with
        gaps in the training rows ("none": NaN is an error).
    """

    _regression = False

    def __init__(self, hidden_layers: int = 3, hidden_units: int = 64, dropout: float = 0.2,
                 lr: float = 1e-3, batch_size: int = 64, max_epochs: int = 200,
                 patience: int = 20, validation_fraction: float = 0.2,
                 adversary_weight: float = 0.1, kl_weight: float = 1e-3, prior_sd: float = 0.1,
                 fairness_weight: float = 0.0, adversary_lr: float = 1e-3,
                 adversary_units: int = 32, min_cluster_size: int = 2,
                 random_effects: bool = True, random_state: int = 0, n_threads: int = 1,
                 impute: str = "median"):
        self.hidden_layers = hidden_layers
        self.hidden_units = hidden_units
        self.dropout = dropout
        self.lr = lr
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.adversary_weight = adversary_weight
        self.kl_weight = kl_weight
        self.prior_sd = prior_sd
        self.fairness_weight = fairness_weight
        self.adversary_lr = adversary_lr
        self.adversary_units = adversary_units
        self.min_cluster_size = min_cluster_size
        self.random_effects = random_effects
        self.random_state = random_state
        self.n_threads = n_threads
        self.impute = impute

    # -- checks ---------------------------------------------------------------------------
    def _check_params(self) -> TrainConfig:
        check_mlp_params(self)
        check_positive_int(self.adversary_units, name="adversary_units")
        check_positive_int(self.min_cluster_size, name="min_cluster_size")
        for name in ("adversary_weight", "kl_weight", "fairness_weight"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ConfigError(f"{name} must be a number >= 0, got {v!r}.")
        for name in ("prior_sd", "adversary_lr"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not v > 0:
                raise ConfigError(f"{name} must be > 0, got {v!r}.")
        return TrainConfig(lr=self.lr, batch_size=self.batch_size, max_epochs=self.max_epochs,
                           patience=self.patience, n_threads=self.n_threads).validate()

    def _target(self, y: Any, n: int) -> np.ndarray:
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit "
                                 "first.")

    def _codes(self, clusters: Any, n: int) -> np.ndarray:
        """Cluster codes for prediction: -1 for clusters not seen (or too small) in fit."""
        if clusters is None:
            return np.full(n, -1, dtype=np.int64)
        labels = check_clusters(clusters, n_rows=n)
        if not self.random_effects:
            return np.full(n, -1, dtype=np.int64)
        lookup = {c: i for i, c in enumerate(self.clusters_)}
        return np.array([lookup.get(c, -1) for c in labels], dtype=np.int64)

    # -- fit ------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, *, clusters: Any = None,
            sensitive_features: Any = None) -> "_MixedEffectsBase":
        """Fit on ``X``, ``y`` with one cluster label per row.

        Parameters
        ----------
        clusters
            One categorical column (array, Series or one-column DataFrame), no missing
            labels.  Clusters with fewer than ``min_cluster_size`` rows get no random
            effect (a :class:`SmallClusterWarning` says which); their rows train the
            fixed effects only.
        sensitive_features
            Needed when ``fairness_weight > 0``: one column per sensitive attribute, each
            with at least two groups.
        """
        return self._fit_one(X, y, clusters, sensitive_features, None, None, self.random_state)

    def fit_runs(self, X: Any, y: Any, *, clusters: Any = None, sensitive_features: Any = None,
                 train_indices: Any, val_indices: Any, seeds: Any) -> "_MixedEffectsBase":
        """Fit one run on rows ``train_indices[0]``, early-stopping on ``val_indices[0]``
        (clusters are those of every row passed)."""
        if len(seeds) != 1 or len(train_indices) != 1 or len(val_indices) != 1:
            raise ConfigError(f"{type(self).__name__} trains one run per fit; pass one train "
                              "and one validation index array and one seed.")
        return self._fit_one(X, y, clusters, sensitive_features, np.asarray(train_indices[0]),
                             np.asarray(val_indices[0]), int(seeds[0]))

    def _fit_one(self, X: Any, y: Any, clusters: Any, sensitive_features: Any,
                 tr: np.ndarray | None, va: np.ndarray | None, seed: int
                 ) -> "_MixedEffectsBase":
        cfg = self._check_params()
        Xa, names = check_X(X, allow_nan=self.impute == "median")
        n = Xa.shape[0]
        self.feature_names_in_, self.n_features_in_ = names, Xa.shape[1]
        target = self._target(y, n)
        labels = check_clusters(clusters, n_rows=n)
        values, counts = np.unique(labels, return_counts=True)
        small = values[counts < self.min_cluster_size]
        if len(small) and self.random_effects:
            warnings.warn(f"{len(small)} cluster(s) have fewer than {self.min_cluster_size} "
                          f"rows ({', '.join(map(repr, small[:5]))}"
                          f"{', ...' if len(small) > 5 else ''}); they get no random effect "
                          "and are predicted with fixed effects only.", SmallClusterWarning,
                          stacklevel=2)
        self.clusters_ = [str(v) for v in values[counts >= self.min_cluster_size]]
        if not self.clusters_:
            raise ConfigError(f"no cluster has {self.min_cluster_size} rows or more; a "
                              "mixed-effects model needs clusters with several rows each.")
        codes = self._codes(labels, n)
        attrs = None
        if self.fairness_weight > 0:
            attrs = check_sensitive_frame(sensitive_features, n_rows=n,
                                          who=f"{type(self).__name__}(fairness_weight > 0)")
        self.attributes_ = [] if attrs is None else [str(c) for c in attrs.columns]
        self.attribute_groups_ = {} if attrs is None else {
            str(c): sorted(attrs[c].unique()) for c in attrs.columns}
        strat = labels if self._regression else np.char.add(labels, "|" + target.astype(str))
        if tr is None:
            tr, va = train_val_split(np.zeros(n, dtype=int), strat, self.validation_fraction,
                                     seed)
        X_t = torch.from_numpy(Xa)
        arrays = {"y": torch.from_numpy(self._train_target(target, tr)),
                  "c": torch.from_numpy(codes)}
        if attrs is not None:
            for k, c in enumerate(attrs.columns):
                arrays[f"s{k}"] = torch.from_numpy(np.searchsorted(
                    self.attribute_groups_[str(c)], attrs[c].to_numpy()).astype(np.int64))
        self.missing_indicators_ = missing_columns(Xa, [tr], self.impute, names)
        with set_threads(self.n_threads):
            net = MixedEffectsNet(seed, Xa.shape[1],
                                  [self.hidden_units] * self.hidden_layers, self.dropout,
                                  len(self.clusters_), prior_sd=self.prior_sd,
                                  impute=self.impute == "median",
                                  indicators=self.missing_indicators_)
            net.scale.fit_rows(X_t, [tr])
            self.net_ = net
            loss, step, self.adversaries_ = self._objective(net, seed)
            self.train_report_: TrainReport = fit_members(
                net, loss, X_t, arrays, [tr], [va], [seed], cfg,
                set_generator=net.set_generator, adversary=step)
        return self

    def _train_target(self, target: np.ndarray, tr: np.ndarray) -> np.ndarray:
        return target.astype(np.float32)

    def _task_loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _fair_input(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(prediction, y) per row, (B, 2), as the fairness adversaries see it."""
        raise NotImplementedError

    def _objective(self, net: MixedEffectsNet, run_seed: int):
        """The main loss, the adversary step and the adversaries (for ``fit_members``)."""
        n_clusters = len(self.clusters_)
        width = self.hidden_units * self.hidden_layers
        seed = run_seed * 7919
        cluster_adv = Adversary(width, n_clusters, self.adversary_units, seed + 1)
        fair_advs = [[Adversary(2, len(self.attribute_groups_[a]), self.adversary_units,
                                seed + 2 + 3 * k + j) for j in range(3)]
                     for k, a in enumerate(self.attributes_)]
        modules = [cluster_adv] + [m for pair in fair_advs for m in pair]
        params = [p for m in modules for p in m.parameters()]
        opt = torch.optim.Adam(params, lr=self.adversary_lr)
        cap_c = 2 * math.log(max(n_clusters, 2))
        caps = [2 * math.log(max(len(self.attribute_groups_[a]), 2)) for a in self.attributes_]
        use_cluster = self.adversary_weight > 0 and n_clusters > 1
        use_fair = self.fairness_weight > 0

        def adversary_losses(fe, me, hidden, batch):
            """Cross-entropies of the cluster and fairness adversaries on this batch."""
            out = []
            if use_cluster:
                seen = batch["c"][0] >= 0
                h = torch.cat(hidden, dim=-1)[0]
                ce = F.cross_entropy(cluster_adv(h[seen]), batch["c"][0][seen]) if seen.any() \
                    else h.sum() * 0
                out.append((ce, self.adversary_weight, cap_c))
            if use_fair:
                y = batch["y"][0]
                for k, (adv_fe, adv_me, adv_re) in enumerate(fair_advs):
                    s = batch[f"s{k}"][0]
                    for adv, o in ((adv_fe, fe), (adv_me, me), (adv_re, me - fe)):
                        ce = F.cross_entropy(adv(self._fair_input(o[0], y)), s)
                        out.append((ce, self.fairness_weight, caps[k]))
            return out

        def loss(x, batch, w):
            sample = w is None and net.training
            fe, me, hidden = net(x, batch["c"][0], sample=sample)
            task = (weighted_mean(self._task_loss(me, batch["y"]), w)
                    + weighted_mean(self._task_loss(fe, batch["y"]), w))
            if w is not None:            # validation: the task loss alone
                return task
            total = task + self.kl_weight * net.kl() / n_clusters
            for ce, weight, cap in adversary_losses(fe, me, hidden, batch):
                total = total - weight * torch.clamp(ce, max=cap)
            return total

        def step(x, batch):
            if not (use_cluster or use_fair):
                return
            buffers = {k: b.clone() for k, b in net.named_buffers()}
            with torch.no_grad():        # the net's current outputs, as the main step sees
                fe, me, hidden = net(x, batch["c"][0], sample=True)
            for k, b in net.named_buffers():       # no second BatchNorm statistics update
                b.copy_(buffers[k])
            opt.zero_grad()
            adv = sum(ce for ce, _, _ in adversary_losses(fe, me, hidden, batch))
            adv.backward()
            opt.step()

        return loss, step, {"cluster": cluster_adv, "fairness": fair_advs}

    # -- prediction -----------------------------------------------------------------------
    def _features(self, X: Any) -> np.ndarray:
        X = align_features(X, self.feature_names_in_, who=type(self).__name__)
        return check_X(X, allow_nan=self.impute == "median")[0]

    def _outputs(self, X: Any, clusters: Any) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        Xa = self._features(X)
        codes = self._codes(clusters, Xa.shape[0])
        with set_threads(self.n_threads), torch.no_grad():
            self.net_.eval()
            fe, me, _ = self.net_(torch.from_numpy(Xa).unsqueeze(0), torch.from_numpy(codes))
        return fe[0].numpy().astype(np.float64), me[0].numpy().astype(np.float64)

    def hidden_activations(self, X: Any) -> np.ndarray:
        """The fixed-effects net's concatenated hidden activations (eval mode), (n, L*H)."""
        self._check_fitted()
        Xa = self._features(X)
        with set_threads(self.n_threads), torch.no_grad():
            self.net_.eval()
            _, _, hidden = self.net_(torch.from_numpy(Xa).unsqueeze(0), None)
        return torch.cat(hidden, dim=-1)[0].numpy()

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Save to a directory (``config.json`` + ``model.safetensors``, no pickle): what
        prediction needs (the networks, clusters, features, imputation, target scale);
        the adversaries are training-only and not saved."""
        self._check_fitted()
        cfg = {"class": type(self).__name__, "params": self.get_params(deep=False),
               "classes": [c.item() if hasattr(c, "item") else c
                           for c in getattr(self, "classes_", [])],
               "clusters": list(self.clusters_), "feature_names": list(self.feature_names_in_),
               "missing_indicators": list(self.missing_indicators_),
               "attributes": list(self.attributes_),
               "attribute_groups": {k: [str(v) for v in vs]
                                    for k, vs in self.attribute_groups_.items()},
               "target_scale": ([self.y_mean_, self.y_scale_] if self._regression else None)}
        return write_model(path, cfg, self.net_)

    @classmethod
    def load(cls, path: str | Path) -> "_MixedEffectsBase":
        """Load a model saved with :meth:`save`."""
        path, cfg = read_model_config(path)
        klass = {"MixedEffectsClassifier": MixedEffectsClassifier,
                 "MixedEffectsRegressor": MixedEffectsRegressor}.get(cfg.get("class", ""))
        if klass is None or not issubclass(klass, cls):
            raise PersistenceError(f"{path} holds a {cfg.get('class')!r}, not a {cls.__name__}.")
        with changed_config(path):
            est = klass(**cfg["params"])
            est.clusters_ = [str(c) for c in cfg["clusters"]]
            est.feature_names_in_ = list(cfg["feature_names"])
            est.n_features_in_ = len(est.feature_names_in_)
            est.missing_indicators_ = [int(i) for i in cfg["missing_indicators"]]
            est.attributes_ = list(cfg["attributes"])
            est.attribute_groups_ = {k: list(v) for k, v in cfg["attribute_groups"].items()}
            if klass is MixedEffectsClassifier:
                est.classes_ = np.array(cfg["classes"])
            else:
                est.y_mean_, est.y_scale_ = (float(v) for v in cfg["target_scale"])
            net = MixedEffectsNet(0, est.n_features_in_,
                                  [est.hidden_units] * est.hidden_layers, est.dropout,
                                  len(est.clusters_), prior_sd=est.prior_sd,
                                  impute=est.impute == "median",
                                  indicators=est.missing_indicators_)
        est.net_ = load_weights(path, cfg, net)
        return est

    @property
    def random_effects_(self) -> pd.DataFrame:
        """Posterior means per seen cluster: ``intercept`` and one slope per feature
        (slopes act on standardised features)."""
        self._check_fitted()
        slopes = self.net_.slope_mu.detach()[0].numpy()
        frame = pd.DataFrame(slopes, index=self.clusters_,
                             columns=[f"slope_{f}" for f in self.feature_names_in_]
                             + [f"slope_missing_{self.feature_names_in_[i]}"
                                for i in self.missing_indicators_])
        frame.insert(0, "intercept", self.net_.icpt_mu.detach()[0].numpy())
        frame.index.name = "cluster"
        return frame


class MixedEffectsClassifier(ClassifierMixin, _MixedEffectsBase):
    """Binary classifier with fixed effects, per-cluster random effects and adversaries.

    ``predict_proba(X, clusters=None)``: with ``clusters``, rows of clusters seen in fit
    use the mixed prediction and other rows the fixed effects; without, every row uses
    the fixed effects (the model for new sites).  See the module docstring.
    """

    def _target(self, y: Any, n: int) -> np.ndarray:
        y01, classes = check_binary_y(y, n_rows=n)
        self.classes_ = classes
        return y01

    def _task_loss(self, out, y):
        return F.binary_cross_entropy_with_logits(out, y, reduction="none")

    def _fair_input(self, out, y):
        return torch.stack([torch.sigmoid(out), y], dim=-1)

    def predict_proba(self, X: Any, clusters: Any = None) -> np.ndarray:
        fe, me = self._outputs(X, clusters)
        p = 1 / (1 + np.exp(-me))
        return np.column_stack([1 - p, p])

    def predict(self, X: Any, clusters: Any = None) -> np.ndarray:
        return self.classes_[(self.predict_proba(X, clusters)[:, 1] >= 0.5).astype(int)]


class MixedEffectsRegressor(RegressorMixin, _MixedEffectsBase):
    """Regressor (squared error on the standardised target) with fixed and random effects.

    ``predict(X, clusters=None)`` as :class:`MixedEffectsClassifier` (mixed for seen
    clusters, fixed effects otherwise), in the target's own units.
    """

    _regression = True

    def _target(self, y: Any, n: int) -> np.ndarray:
        arr = np.asarray(y, dtype=object).ravel()
        try:
            v = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise TargetError("y must be numeric for MixedEffectsRegressor.") from None
        if len(v) != n:
            raise TargetError(f"X has {n} rows but y has {len(v)}.")
        if not np.isfinite(v).all():
            raise TargetError(f"y has {int((~np.isfinite(v)).sum())} missing or infinite "
                              "values; drop those rows.")
        return v

    def _train_target(self, target: np.ndarray, tr: np.ndarray) -> np.ndarray:
        self.y_mean_ = float(target[tr].mean())
        self.y_scale_ = float(target[tr].std()) or 1.0
        return ((target - self.y_mean_) / self.y_scale_).astype(np.float32)

    def _task_loss(self, out, y):
        return (out - y) ** 2

    def _fair_input(self, out, y):
        return torch.stack([out, y], dim=-1)

    def predict(self, X: Any, clusters: Any = None) -> np.ndarray:
        _, me = self._outputs(X, clusters)
        return me * self.y_scale_ + self.y_mean_


__all__ = ["MixedEffectsClassifier", "MixedEffectsRegressor", "SmallClusterWarning"]
