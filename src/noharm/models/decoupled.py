"""Decoupled personalization (DCP): one generic-architecture model per subgroup."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import GroupError
from ..training import TrainReport, fit_members
from .generic import GenericClassifier, ScaledMLP, bce_loss, unscale


class DecoupledClassifier(GenericClassifier):
    """One :class:`GenericClassifier`-architecture network per subgroup (DESIGN §3).

    Each subgroup's network trains on that subgroup's training rows only, and
    prediction routes each row to its group's network, so ``sensitive_features``
    is required both in :meth:`fit` and at prediction time.  All subgroup
    networks (of all runs) train together as one batched ensemble, each
    exactly as if alone (one batched ensemble per subgroup).  Parameters are those of :class:`GenericClassifier`.

    Raises
    ------
    GroupError
        In fit, when a subgroup's training rows hold one class only (the group is
        named); at prediction, when the groups are missing or were never seen.
    """

    requires_groups_fit = True
    requires_groups_predict = True

    def _build(self, n_members: int, seeds: list[int]) -> nn.ModuleList:
        """One ensemble (over runs) per subgroup."""
        return nn.ModuleList(
            ScaledMLP([s * 100 + g for s in seeds], self.n_features_in_,
                      [self.hidden_units] * self.hidden_layers, self.dropout,
                      **self._input_kw())
            for g in range(len(self.groups_)))

    def _train(self, X, y, codes, groups, train_idx, val_idx, seeds) -> dict[str, TrainReport]:
        yn = y.numpy()
        per_group: list[tuple[list[np.ndarray], list[np.ndarray]]] = []
        for g, name in enumerate(self.groups_):
            g_train, g_val = [], []
            for r, (tr, va) in enumerate(zip(train_idx, val_idx)):
                t, v = tr[codes[tr] == g], va[codes[va] == g]
                where = f" in run {r}" if len(seeds) > 1 else ""
                if len(t) == 0:
                    raise GroupError(f"subgroup {name!r} has no training rows{where}; merge it "
                                     "with another group or use coarser bins.")
                if len(np.unique(yn[t])) < 2 and not self._regression:
                    raise GroupError(
                        f"subgroup {name!r} has training rows of one class only "
                        f"({len(t)} rows, all {str(self.classes_[int(yn[t][0])])!r}){where}; "
                        "DecoupledClassifier cannot train a model for it: merge it with another "
                        "group, or use GenericClassifier or ConditionalBiasClassifier, which "
                        "still train.")
                if len(v) == 0:
                    raise GroupError(f"subgroup {name!r} has no validation rows for early "
                                     f"stopping{where}; it needs more rows.")
                g_train.append(t)
                g_val.append(v)
            per_group.append((g_train, g_val))
        self.net_ = self._build(len(seeds), seeds)
        reports = {}
        for g, (g_train, g_val) in enumerate(per_group):
            net = self.net_[g]
            net.scale.fit_rows(X, g_train)
            self._fit_target(net, y, g_train)
            reports[self.groups_[g]] = fit_members(
                net, bce_loss(net, self._pointwise(net)), X, {"y": y.float()}, g_train, g_val,
                [s * 100 + g for s in seeds], self._train_config(),
                set_generator=net.set_generator)
        return reports

    def _run_logits(self, X: torch.Tensor, codes: np.ndarray | None) -> torch.Tensor:
        out = torch.empty(self.n_runs_, X.shape[0])
        for g, net in enumerate(self.net_):
            rows = torch.from_numpy(np.flatnonzero(codes == g))
            if len(rows):
                out[:, rows] = unscale(net, net(X[rows].unsqueeze(0).expand(self.n_runs_, -1,
                                                                              -1)))
        return out
