"""Decoupled personalization (DCP): one generic-architecture model per subgroup."""
from __future__ import annotations

import numpy as np
import torch

from ..errors import GroupError
from ..training import TrainReport, fit_members
from .generic import GenericClassifier, bce_loss


class DecoupledClassifier(GenericClassifier):
    """One :class:`GenericClassifier`-architecture network per subgroup (DESIGN §3).

    Each subgroup's network trains on that subgroup's training rows only, and
    prediction routes each row to its group's network, so ``sensitive_features``
    is required both in :meth:`fit` and at prediction time.  All subgroup
    networks (of all runs) train together as one batched ensemble, each
    exactly as if alone.  Parameters are those of :class:`GenericClassifier`.

    Raises
    ------
    GroupError
        In fit, when a subgroup's training rows hold one class only (the group is
        named); at prediction, when the groups are missing or were never seen.
    """

    requires_groups_fit = True
    requires_groups_predict = True

    def _n_members(self) -> int:
        return self.n_runs_ * len(self.groups_)

    def _train(self, X, y, codes, groups, train_idx, val_idx, seeds) -> TrainReport:
        G = len(self.groups_)
        yn = y.numpy()
        m_train, m_val, m_seeds = [], [], []
        for r, (tr, va, s) in enumerate(zip(train_idx, val_idx, seeds)):
            for g, name in enumerate(self.groups_):
                t = tr[codes[tr] == g]
                v = va[codes[va] == g]
                if len(t) == 0:
                    raise GroupError(f"subgroup {name!r} has no training rows"
                                     + (f" in run {r}" if len(seeds) > 1 else "")
                                     + "; merge it with another group or use coarser bins.")
                if len(np.unique(yn[t])) < 2:
                    raise GroupError(
                        f"subgroup {name!r} has training rows of one class only "
                        f"({int(yn[t][0])!r}, {len(t)} rows); DecoupledClassifier cannot train a "
                        "model for it: merge it with another group, or use GenericClassifier or "
                        "ConditionalBiasClassifier, which still train.")
                if len(v) == 0:
                    raise GroupError(f"subgroup {name!r} has no validation rows for early "
                                     "stopping; it needs at least 2 rows.")
                m_train.append(t)
                m_val.append(v)
                m_seeds.append(s * 100 + g)
        net = self._build(len(m_seeds), m_seeds)
        net.scale.fit_rows(X, m_train)
        self.net_ = net
        return fit_members(net, bce_loss(net), X, {"y": y.float()}, m_train, m_val, m_seeds,
                           self._train_config(), set_generator=net.set_generator)

    def _run_logits(self, X: torch.Tensor, codes: np.ndarray | None) -> torch.Tensor:
        G = len(self.groups_)
        all_logits = self.net_(X.unsqueeze(0).expand(self.n_runs_ * G, -1, -1))
        all_logits = all_logits.view(self.n_runs_, G, -1)           # (R, G, n)
        idx = torch.from_numpy(codes).view(1, 1, -1).expand(self.n_runs_, 1, -1)
        return all_logits.gather(1, idx).squeeze(1)
