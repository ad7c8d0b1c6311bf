"""Adam over an ensemble, with a per-member *active* mask.

All trainable parameters (each of shape ``(E, ...)``) are re-pointed into one
flat buffer laid out parameter-major (each parameter's ``(E, n)`` block is
contiguous), and their ``.grad`` into a twin buffer.  One Adam step is then a
handful of vectorised ops, and members that are idle (their epoch is over) or
stopped (early stopping) are left exactly untouched: no parameter change, no
moment decay, no step count increase.  Each member therefore follows the same
trajectory as if trained alone.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch


class FlatAdam:
    """Adam (Kingma & Ba, 2015) with per-member masking.

    Parameters
    ----------
    params
        Tensors of shape ``(E, ...)`` (the ensemble axis first).
    n_members
        ``E``.
    lr, betas, eps, weight_decay
        As in :class:`torch.optim.Adam` (L2 weight decay added to the gradient).
    """

    def __init__(self, params: Sequence[torch.nn.Parameter], n_members: int, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        params = list(params)
        if not params:
            raise ValueError("FlatAdam needs at least one parameter")
        E = n_members
        sizes = [p[0].numel() for p in params]
        total = sum(sizes) * E
        self.flat = torch.empty(total)
        self.grad = torch.zeros(total)
        member = []
        off = 0
        for p, n in zip(params, sizes):
            if p.shape[0] != E:
                raise ValueError("every parameter needs the ensemble axis first")
            block = self.flat[off:off + E * n]
            block.copy_(p.data.reshape(-1))
            p.data = block.view_as(p)
            p.grad = self.grad[off:off + E * n].view_as(p)
            member.append(torch.arange(E).repeat_interleave(n))
            off += E * n
        self.member_of = torch.cat(member)                   # member index of every element
        self.params = params
        self.n_members = E
        self.lr, self.eps, self.weight_decay = lr, eps, weight_decay
        self.b1, self.b2 = betas
        self.m = torch.zeros(total)
        self.v = torch.zeros(total)
        self.steps = torch.zeros(E)

    def zero_grad(self) -> None:
        self.grad.zero_()

    @torch.no_grad()
    def step(self, active: torch.Tensor) -> None:
        """One Adam step for the members where ``active`` (bool, shape (E,)) is True."""
        a = active.to(self.flat.dtype)
        self.steps += a
        mask = a[self.member_of]
        g = self.grad
        if self.weight_decay:
            g = g + self.weight_decay * self.flat
        # m <- b1 m + (1-b1) g on active members only
        self.m.addcmul_(mask, g - self.m, value=1.0 - self.b1)
        self.v.addcmul_(mask, g * g - self.v, value=1.0 - self.b2)
        t = self.steps.clamp(min=1.0)
        bc1 = (1.0 - self.b1 ** t)[self.member_of]
        bc2 = (1.0 - self.b2 ** t)[self.member_of]
        denom = (self.v / bc2).sqrt_().add_(self.eps)
        self.flat.addcdiv_(self.m * mask, denom * bc1, value=-self.lr)

    def member_mask(self, members: torch.Tensor) -> torch.Tensor:
        """Boolean mask over the flat buffer selecting the given members (bool (E,))."""
        return members[self.member_of]
