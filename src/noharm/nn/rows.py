"""Rows a network reads and its logit: helpers shared by the training loop of lazily read
cohorts (:mod:`noharm.training.single`) and the debiasing methods (:mod:`noharm.debias`),
kept here, below both, so neither imports the other."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, default_collate


class RowData:
    """The rows a debiasing method reads, on ``device``.

    ``X`` is an array (n, ...) held in memory, or a torch ``Dataset`` whose item ``i`` is
    the input of row ``i`` (or a tuple starting with it): a Dataset is read lazily, only
    the rows of one batch at a time, so an image cohort never has to fit in memory.
    """

    def __init__(self, X: Any, device: torch.device, batch_size: int = 256):
        self.device, self.batch_size = device, int(batch_size)
        if isinstance(X, Dataset):
            self.dataset, self.tensor = X, None
            self.n = len(X)           # type: ignore[arg-type]
        else:
            self.dataset = None
            self.tensor = torch.as_tensor(np.asarray(X, dtype=np.float32))
            self.n = len(self.tensor)

    def get(self, rows: torch.Tensor | np.ndarray | range) -> torch.Tensor:
        """The inputs of ``rows`` (positions), stacked, on the device."""
        if self.tensor is not None:
            return self.tensor[torch.as_tensor(np.asarray(rows), dtype=torch.long)].to(
                self.device)
        items = [self.dataset[int(i)] for i in rows]
        items = [it[0] if isinstance(it, (tuple, list)) else it for it in items]
        return default_collate(items).float().to(self.device)

    def batches(self):
        """``(rows, inputs)`` over every row, in order, ``batch_size`` at a time."""
        for start in range(0, self.n, self.batch_size):
            rows = torch.arange(start, min(start + self.batch_size, self.n))
            yield rows, self.get(rows)


def model_device(model: nn.Module) -> torch.device:
    p = next(iter(model.parameters()), None)
    return torch.device("cpu") if p is None else p.device


def logits_of(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    out = model(X)
    return out.reshape(out.shape[0], -1)[:, -1] if out.dim() > 1 else out


__all__ = ["RowData", "logits_of", "model_device"]
