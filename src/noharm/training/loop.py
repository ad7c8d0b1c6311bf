"""The one training loop every noharm model uses.

:func:`fit_members` trains ``E`` ensemble members at once.  Each member has
its own training rows, validation rows and seed; batches are drawn per member
(its own permutation each epoch, see :func:`plan_epoch`); one fused Adam step
updates every member (:class:`~noharm.training.optim.FlatParameters`).  After every epoch each member's validation loss is computed
in eval mode; a member whose loss has not improved for ``patience`` epochs
stops and is dropped from the batched computation (the others carry on
with their optimiser state intact), and at the end every member is restored to its best checkpoint
(early stopping with best-checkpoint restore).  Training ends when every
member has stopped or after ``max_epochs``.
"""
from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from .._validation import check_fraction, check_positive_int
from ..errors import ConfigError
from .optim import LAYOUT_WARNING, FlatAdam, FlatParameters
from .surgery import project

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
    conflict_share: list[float] = field(default_factory=list)


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


MAX_SIZE_RATIO = 1.5


def plan_epoch(train_idx: Sequence[np.ndarray], batch_size: int,
               rngs: Sequence[np.random.Generator]) -> list[torch.Tensor]:
    """Per-step row indices ``(E, b)``: every member's batches have the same size.

    Each member draws a fresh permutation of its rows every epoch and keeps its
    first ``n_min`` (the smallest member's size), split into
    ``ceil(n_min / batch_size)`` near-equal batches.  Members of a protocol have
    (nearly) equal sizes, so at most a few random rows per member sit out an epoch.
    """
    n_min = min(len(r) for r in train_idx)
    n_steps = max(1, math.ceil(n_min / batch_size))
    perms = np.stack([rng.permutation(rows)[:n_min] for rows, rng in zip(train_idx, rngs)])
    return [torch.from_numpy(c) for c in np.array_split(perms, n_steps, axis=1)]


def _gather(arrays: Mapping[str, torch.Tensor], idx: torch.Tensor) -> dict[str, torch.Tensor]:
    return {k: v[idx] for k, v in arrays.items()}


def member_rng_seed(seeds: Sequence[int], salt: int) -> int:
    return int(np.random.SeedSequence([int(s) for s in seeds] + [salt]).generate_state(1)[0])


def _named_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    return dict(module.named_parameters()) | dict(module.named_buffers())


def _replace(module: nn.Module, name: str, value: torch.Tensor) -> None:
    """Swap a parameter or buffer for a new tensor (autograd keeps the old shape of a
    leaf, so a member-subset needs a new Parameter, not a new ``.data``)."""
    *path, leaf = name.split(".")
    owner = module
    for part in path:
        owner = getattr(owner, part)
    if leaf in owner._parameters:
        old = owner._parameters[leaf]
        owner._parameters[leaf] = nn.Parameter(value, requires_grad=old.requires_grad)
    else:
        owner._buffers[leaf] = value


class _Modes:
    """``module.train()`` / ``module.eval()`` without walking the module tree every epoch:
    the ``training`` flag each submodule gets in either mode is read once (so a module's
    own ``train`` override, e.g. a frozen part staying in eval mode, is respected)."""

    def __init__(self, module: nn.Module):
        self.modules = list(module.modules())
        module.train()
        self.flags = [m.training for m in self.modules]

    def set(self, training: bool) -> None:
        for m, flag in zip(self.modules, self.flags):
            m.training = flag and training


def keep_members(module: nn.Module, ids: Sequence[int]) -> nn.Module:
    """Keep only members ``ids`` (in that order) of a module whose tensors all carry the
    ensemble axis first (e.g. the one member chosen after training a grid)."""
    index = torch.as_tensor(ids, dtype=torch.long)
    for name, t in _named_tensors(module).items():
        _replace(module, name, t.detach()[index].clone())
    return module


def _flatten(module: nn.Module, config: TrainConfig, opt: FlatAdam | None,
             keep: torch.Tensor | None, old: FlatParameters | None = None
             ) -> tuple[FlatParameters, FlatAdam]:
    """(Re)pack the trainable parameters; with ``keep``, first drop the other members.

    Adam's moments of the kept members carry over, so compaction does not change
    any member's trajectory.
    """
    moments = None
    if keep is not None:
        moments = {k: (v[keep] if v.dim() else v) for k, v in opt.state.items()}
        old.release()
        keep_members(module, keep)
    params = [p for p in module.parameters() if p.requires_grad]
    flat = FlatParameters(params, params[0].shape[0])
    new = flat.adam(config.lr, config.weight_decay)
    if moments is not None:
        new.load_state(moments)
    return flat, new


def fit_members(module: nn.Module, loss_fn: LossFn, X: torch.Tensor,
                arrays: Mapping[str, torch.Tensor], train_idx: Sequence[np.ndarray],
                val_idx: Sequence[np.ndarray], seeds: Sequence[int], config: TrainConfig,
                set_generator: Callable[[torch.Generator | None], None] | None = None,
                surgery: str | None = None,
                surgery_clip: Sequence[float] | None = None,
                adversary: Callable[[torch.Tensor, Mapping[str, torch.Tensor]], None] | None
                = None) -> TrainReport:
    """Train the ``E`` members of ``module`` (the one training loop of noharm).

    Parameters
    ----------
    module
        A module whose trainable parameters all carry the ensemble axis first.
        Parameters with ``requires_grad=False`` are left alone (frozen).
    loss_fn
        ``loss_fn(x (E,B,F), batch {name: (E,B,...)}, w) -> (E,)``: each
        member's mean loss; ``w (E,B)`` weights rows (padding = 0) for the
        validation pass, and is None in training (all rows real).
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
    surgery
        None for one objective.  ``"conflict"`` or ``"always"``: ``loss_fn`` returns
        ``(K, E)`` losses (row 0 the prediction loss); every step takes K backward passes
        and updates with the PCGrad-projected sum (:func:`~noharm.training.surgery.project`);
        the report's ``conflict_share`` gives, per epoch, the share of (step, member,
        fairness loss) triples whose gradient conflicted with the prediction gradient.
        Early stopping uses the sum of the K validation losses.
    surgery_clip
        With ``surgery``: one factor per fairness loss; its gradient is shrunk to at most
        that factor times the prediction gradient's norm before projection
        (:func:`~noharm.training.surgery.project`).
    adversary
        ``adversary(x, batch)`` runs before every main step on the same batch: the
        alternating update of adversaries that live outside ``module`` and have their
        own optimiser (mixed-effects networks).  Needs a single member.
    """
    config.validate()
    E = len(seeds)
    if not (len(train_idx) == len(val_idx) == E):
        raise ConfigError("train_idx, val_idx and seeds need one entry per member")
    for e in range(E):
        if len(train_idx[e]) < 2 or len(val_idx[e]) == 0:
            raise ConfigError(f"member {e} has fewer than 2 training rows or no validation rows")
    if adversary is not None and E != 1:
        raise ConfigError("adversarial training (adversary=) trains one member at a time.")
    sizes = [len(t) for t in train_idx]
    if max(sizes) > MAX_SIZE_RATIO * min(sizes):
        raise ConfigError(
            f"ensemble members have very different training sizes ({min(sizes)} to "
            f"{max(sizes)} rows); train members of different sizes in separate calls.")
    tensors = _named_tensors(module)
    for name, t in tensors.items():
        if t.dim() == 0 or t.shape[0] != E:
            raise ConfigError(f"module tensor {name!r} lacks the ensemble axis of size {E}")
    with set_threads(config.n_threads), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=LAYOUT_WARNING)
        gen = torch.Generator().manual_seed(member_rng_seed(seeds, 1))
        if set_generator is not None:
            set_generator(gen)
        rngs = [np.random.default_rng([int(s), 2]) for s in seeds]
        best = {k: t.detach().clone() for k, t in tensors.items()}  # full-size checkpoints
        best_loss = np.full(E, np.inf)
        best_epoch = np.zeros(E, dtype=np.int64)
        epochs_run = np.zeros(E, dtype=np.int64)
        stopped = np.zeros(E, dtype=bool)
        history: list[np.ndarray] = []
        history_conf: list[float] = []
        alive = np.arange(E)                 # original ids of the members still in `module`
        flat, opt = _flatten(module, config, None, None)
        clip_t = None if surgery_clip is None else torch.tensor(list(surgery_clip),
                                                                dtype=torch.float32)
        v_idx, v_w = _pad(val_idx)
        xv, bv = X[v_idx], _gather(arrays, v_idx)
        modes = _Modes(module)
        live = tensors                       # refreshed when members are dropped
        for epoch in range(config.max_epochs):
            modes.set(True)
            conflicts = []
            for idx in plan_epoch([train_idx[e] for e in alive], config.batch_size,
                                  [rngs[e] for e in alive]):
                if adversary is not None:
                    adversary(X[idx], _gather(arrays, idx))
                flat.zero_grad()
                loss = loss_fn(X[idx], _gather(arrays, idx), None)
                if surgery is None:
                    loss.sum().backward()
                else:
                    grads = []
                    for k in range(loss.shape[0]):
                        flat.zero_grad()
                        loss[k].sum().backward(retain_graph=k < loss.shape[0] - 1)
                        grads.append(flat.flat.grad.clone())
                    combined, conflict = project(torch.stack(grads), surgery, clip_t)
                    flat.flat.grad.copy_(combined)
                    conflicts.append(conflict.float().mean().item())
                opt.step()
            if surgery is not None:
                history_conf.append(float(np.mean(conflicts)) if conflicts else 0.0)
            epochs_run[alive] += 1
            modes.set(False)
            with torch.no_grad():
                val_out = loss_fn(xv, bv, v_w)
                if surgery is not None:
                    val_out = val_out.sum(0)
                val_alive = val_out.numpy().astype(np.float64)
            val = np.full(E, np.nan)
            val[alive] = val_alive
            history.append(val)
            improved = val_alive < best_loss[alive]
            if improved.any():
                ids = alive[improved]
                best_loss[ids] = val_alive[improved]
                best_epoch[ids] = epoch + 1
                pos = torch.from_numpy(np.flatnonzero(improved))
                ids_t = torch.from_numpy(ids)
                for k, t in live.items():
                    best[k][ids_t] = t.detach()[pos]
            stopped[alive] = (epoch + 1 - best_epoch[alive]) >= config.patience
            if stopped.all():
                break
            keep = ~stopped[alive]
            if not keep.all():           # drop stopped members from the computation
                alive = alive[keep]
                flat, opt = _flatten(module, config, opt, torch.from_numpy(np.flatnonzero(keep)),
                                     old=flat)
                live = _named_tensors(module)
                v_idx, v_w = _pad([val_idx[e] for e in alive])
                xv, bv = X[v_idx], _gather(arrays, v_idx)
        flat.release()
        for k in tensors:                     # restore every member's best checkpoint
            _replace(module, k, best[k])
        if set_generator is not None:
            set_generator(None)
        module.eval()
    return TrainReport(epochs_run=epochs_run, best_epoch=best_epoch, best_val_loss=best_loss,
                       val_history=history, conflict_share=history_conf)
