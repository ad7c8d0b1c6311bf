"""The one training loop every noharm model uses.

:func:`fit_members` trains ``E`` ensemble members at once.  Each member has
its own training rows, validation rows and seed; batches are drawn per member
(its own permutation each epoch, ``ceil(n_e / batch_size)`` near-equal
batches), padded to a common shape with zero weights, and the masked Adam of
:class:`~noharm.training.optim.FlatAdam` leaves members untouched while they
have no batch.  After every epoch each member's validation loss is computed
in eval mode; a member whose loss has not improved for ``patience`` epochs
stops, and at the end every member is restored to its best checkpoint
(early stopping with best-checkpoint restore).
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from .._validation import check_fraction, check_positive_int
from ..errors import ConfigError
from .optim import FlatAdam

LossFn = Callable[[torch.Tensor, Mapping[str, torch.Tensor], torch.Tensor], torch.Tensor]


@dataclass
class TrainConfig:
    """Optimisation settings shared by every model.

    Attributes
    ----------
    lr : Adam learning rate (DESIGN §3: 1e-3).
    batch_size : rows per mini-batch and member.
    max_epochs : upper bound on epochs.
    patience : epochs without validation improvement before a member stops.
    weight_decay : L2 penalty added to the gradient.
    n_threads : torch threads while training (default 1; parallelism comes from processes).
    """

    lr: float = 1e-3
    batch_size: int = 64
    max_epochs: int = 200
    patience: int = 20
    weight_decay: float = 0.0
    n_threads: int = 1

    def validate(self) -> "TrainConfig":
        check_fraction(self.lr, name="lr", low=0.0, high=10.0)
        check_positive_int(self.batch_size, name="batch_size", minimum=2)
        check_positive_int(self.max_epochs, name="max_epochs")
        check_positive_int(self.patience, name="patience")
        check_positive_int(self.n_threads, name="n_threads")
        if not isinstance(self.weight_decay, (int, float)) or self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay!r}.")
        return self

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainReport:
    """What happened during training, per member."""

    epochs_run: np.ndarray
    best_epoch: np.ndarray
    best_val_loss: np.ndarray
    val_history: list[np.ndarray] = field(default_factory=list)


@contextlib.contextmanager
def set_threads(n: int) -> Iterator[None]:
    """Run the body with ``torch.set_num_threads(n)``, restoring the old value."""
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _pad(rows: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(1, max(len(r) for r in rows))
    idx = np.zeros((len(rows), width), dtype=np.int64)
    w = np.zeros((len(rows), width), dtype=np.float32)
    for e, r in enumerate(rows):
        idx[e, :len(r)] = r
        w[e, :len(r)] = 1.0
    return torch.from_numpy(idx), torch.from_numpy(w)


def plan_epoch(train_idx: Sequence[np.ndarray], batch_size: int,
               rngs: Sequence[np.random.Generator]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per-step ``(idx (E,B), w (E,B))``: each member's rows in near-equal batches."""
    chunks: list[list[np.ndarray]] = []
    for rows, rng in zip(train_idx, rngs):
        perm = rng.permutation(rows)
        n_steps = max(1, math.ceil(len(perm) / batch_size))
        chunks.append(np.array_split(perm, n_steps))
    n_steps = max(len(c) for c in chunks)
    empty = np.zeros(0, dtype=np.int64)
    return [_pad([c[s] if s < len(c) else empty for c in chunks]) for s in range(n_steps)]


def _gather(arrays: Mapping[str, torch.Tensor], idx: torch.Tensor) -> dict[str, torch.Tensor]:
    return {k: v[idx] for k, v in arrays.items()}


def member_rng_seed(seeds: Sequence[int], salt: int) -> int:
    return int(np.random.SeedSequence([int(s) for s in seeds] + [salt]).generate_state(1)[0])


def fit_members(module: nn.Module, loss_fn: LossFn, X: torch.Tensor,
                arrays: Mapping[str, torch.Tensor], train_idx: Sequence[np.ndarray],
                val_idx: Sequence[np.ndarray], seeds: Sequence[int], config: TrainConfig,
                set_generator: Callable[[torch.Generator | None], None] | None = None
                ) -> TrainReport:
    """Train the ``E`` members of ``module`` (the one training loop of noharm).

    Parameters
    ----------
    module
        A module whose trainable parameters all carry the ensemble axis first.
        Parameters with ``requires_grad=False`` are left alone (frozen).
    loss_fn
        ``loss_fn(x (E,B,F), batch {name: (E,B,...)}, w (E,B)) -> (E,)``: each
        member's weighted mean loss over its real rows (``w`` = 1).
    X, arrays
        Full design matrix ``(n, F)`` and per-row targets (``y``, group codes...).
    train_idx, val_idx
        One index array per member: its training and early-stopping rows.
    seeds
        One seed per member (batch order); dropout uses a generator seeded from all.
    config
        :class:`TrainConfig`.
    set_generator
        Callback that hands the dropout generator to the module.
    """
    config.validate()
    E = len(seeds)
    if not (len(train_idx) == len(val_idx) == E):
        raise ConfigError("train_idx, val_idx and seeds need one entry per member")
    for e in range(E):
        if len(train_idx[e]) == 0 or len(val_idx[e]) == 0:
            raise ConfigError(f"member {e} has no training or no validation rows")
    params = [p for p in module.parameters() if p.requires_grad]
    buffers = list(module.buffers())
    with set_threads(config.n_threads):
        gen = torch.Generator().manual_seed(member_rng_seed(seeds, 1))
        if set_generator is not None:
            set_generator(gen)
        rngs = [np.random.default_rng([int(s), 2]) for s in seeds]
        opt = FlatAdam(params, E, lr=config.lr, weight_decay=config.weight_decay)
        best_flat = opt.flat.clone()
        best_buffers = [b.clone() for b in buffers]
        best_loss = np.full(E, np.inf)
        best_epoch = np.zeros(E, dtype=np.int64)
        epochs_run = np.zeros(E, dtype=np.int64)
        stopped = np.zeros(E, dtype=bool)
        history: list[np.ndarray] = []
        v_idx, v_w = _pad(val_idx)
        xv = X[v_idx]
        bv = _gather(arrays, v_idx)
        for epoch in range(config.max_epochs):
            module.train()
            running = torch.from_numpy(~stopped)
            for idx, w in plan_epoch(train_idx, config.batch_size, rngs):
                w = w * running.unsqueeze(1).to(w.dtype)
                active = w.sum(1) > 0
                if not bool(active.any()):
                    continue
                opt.zero_grad()
                loss = loss_fn(X[idx], _gather(arrays, idx), w)
                loss.sum().backward()
                opt.step(active)
            epochs_run[~stopped] += 1
            module.eval()
            with torch.no_grad():
                val = loss_fn(xv, bv, v_w).detach().numpy().astype(np.float64)
            history.append(val)
            improved = (val < best_loss) & ~stopped
            if improved.any():
                best_loss[improved] = val[improved]
                best_epoch[improved] = epoch + 1
                imp = torch.from_numpy(improved)
                sel = opt.member_mask(imp)
                best_flat[sel] = opt.flat[sel]
                for b, bb in zip(buffers, best_buffers):
                    if b.dim() and b.shape[0] == E:
                        bb[imp] = b[imp]
            stopped |= (epoch + 1 - best_epoch) >= config.patience
            if stopped.all():
                break
        with torch.no_grad():
            opt.flat.copy_(best_flat)
            for b, bb in zip(buffers, best_buffers):
                b.copy_(bb)
            for p in params:       # give every parameter its own storage again
                p.grad = None
                p.data = p.data.clone()
        if set_generator is not None:
            set_generator(None)
        module.eval()
    return TrainReport(epochs_run=epochs_run, best_epoch=best_epoch, best_val_loss=best_loss,
                       val_history=history)
