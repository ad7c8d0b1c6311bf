"""Training one network on rows read from a torch ``Dataset`` (image classifiers).

The batched-ensemble loop (:func:`~noharm.training.fit_members`) needs every row in one
tensor; an image cohort is read lazily, a batch at a time, so it trains here, under the
same contract: :class:`~noharm.training.TrainConfig` (Adam, learning rate, batch size,
max epochs, patience), per-epoch validation loss in eval mode on the early-stopping
rows, best-checkpoint restore, seeded batch order and augmentation, one torch thread
by default.
"""
from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from .._device import resolve_device
from ..nn.rows import RowData, logits_of
from ..errors import ConfigError
from .loop import TrainConfig, TrainReport, set_threads


def fit_binary(net: nn.Module, data: Dataset, y: np.ndarray, train_rows: np.ndarray,
               val_rows: np.ndarray, *, config: TrainConfig, seed: int = 0,
               device: str | torch.device = "cpu",
               augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
               class_weight: bool = True) -> TrainReport:
    """Train ``net`` (inputs -> one logit) with binary cross-entropy.

    Parameters
    ----------
    data : item ``i`` is the input of row ``i``; ``y`` the 0/1 labels of every row.
    train_rows, val_rows : rows to train and to early-stop on.
    augment : ``augment(batch, generator)`` applied to training batches only.
    class_weight : weight the positive class by n_neg / n_pos in the training loss (the
        validation loss stays unweighted).
    """
    config.validate()
    y = np.asarray(y).astype(np.float32)
    train_rows, val_rows = np.asarray(train_rows), np.asarray(val_rows)
    if len(train_rows) < 2 or len(val_rows) == 0:
        raise ConfigError("training needs at least 2 training rows and 1 early-stopping row.")
    dev = resolve_device(device)
    torch.manual_seed(seed)
    net.to(dev)
    rows_data = RowData(data, dev, batch_size=config.batch_size)
    yt = torch.from_numpy(y).to(dev)
    pos = float(y[train_rows].sum())
    pw = torch.tensor((len(train_rows) - pos) / max(pos, 1.0) if class_weight else 1.0,
                      device=dev)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    gen = torch.Generator().manual_seed(int(seed))
    rng = np.random.default_rng([int(seed), 2])
    best, best_loss, best_epoch, history = None, np.inf, 0, []
    epoch = 0
    with set_threads(config.n_threads):
        for epoch in range(1, config.max_epochs + 1):
            net.train()
            order = rng.permutation(train_rows)
            for start in range(0, len(order), config.batch_size):
                idx = order[start:start + config.batch_size]
                if len(idx) < 2:                      # BatchNorm needs two rows
                    continue
                x = rows_data.get(idx)
                if augment is not None:
                    x = augment(x, gen)
                opt.zero_grad()
                F.binary_cross_entropy_with_logits(logits_of(net, x), yt[idx],
                                                   pos_weight=pw).backward()
                opt.step()
            net.eval()
            with torch.no_grad():
                total = 0.0
                for start in range(0, len(val_rows), config.batch_size):
                    idx = val_rows[start:start + config.batch_size]
                    total += float(F.binary_cross_entropy_with_logits(
                        logits_of(net, rows_data.get(idx)), yt[idx], reduction="sum"))
            loss = total / len(val_rows)
            history.append(loss)
            if loss < best_loss:
                best_loss, best_epoch = loss, epoch
                best = copy.deepcopy(net.state_dict())
            if epoch - best_epoch >= config.patience:
                break
    if best is not None:
        net.load_state_dict(best)
    net.eval()
    return TrainReport(epochs_run=np.array([epoch]), best_epoch=np.array([best_epoch]),
                       best_val_loss=np.array([best_loss]), val_history=[np.array(history)])
