"""Gradient surgery for several objectives (FairGrad, DESIGN §5; PCGrad rule of Yu et al.,
2020): each gradient is projected onto the normal plane of every other gradient it
conflicts with, and the update is the sum of the projected gradients."""
from __future__ import annotations

import torch

from .._validation import check_choice

MODES = ("conflict", "always")


def project(grads: torch.Tensor, mode: str = "conflict",
            clip: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Combine K gradients per member.

    Parameters
    ----------
    grads : (K, E, P) — K objectives (row 0 the prediction loss), E ensemble members.
    mode : ``conflict`` projects g_i off g_j only when g_i . g_j < 0; ``always`` projects
        regardless of the sign.
    clip : (K - 1,) or None.  Prediction first: the prediction gradient g_0 is never
        projected (only the fairness gradients are), and before projecting, fairness
        gradient k is shrunk to a norm of at most ``clip[k - 1] * |g_0|`` (per member), so
        no fairness term can outweigh prediction by more than its weight nor remove part of
        the prediction gradient.

    Returns
    -------
    (combined (E, P), conflict (K - 1, E) bool): the summed projected gradients, and
    whether fairness gradient k had a negative cosine with the prediction gradient.
    The j loop runs in a fixed order (PCGrad shuffles it) so results are reproducible.
    """
    check_choice(mode, name="projection", choices=MODES)
    K = grads.shape[0]
    if clip is not None:
        g0 = grads[0].norm(dim=-1)                                  # (E,)
        norms = grads[1:].norm(dim=-1).clamp(min=1e-20)             # (K - 1, E)
        factor = torch.clamp(clip.to(grads.dtype)[:, None] * g0[None] / norms, max=1.0)
        grads = torch.cat([grads[:1], grads[1:] * factor[..., None]])
    out = grads.clone()
    sq = (grads * grads).sum(-1).clamp(min=1e-20)              # (K, E)
    for i in range(1 if clip is not None else 0, K):
        for j in range(K):
            if i == j:
                continue
            dot = (out[i] * grads[j]).sum(-1)                   # (E,)
            coef = dot / sq[j]
            if mode == "conflict":
                coef = torch.where(dot < 0, coef, torch.zeros_like(coef))
            out[i] -= coef.unsqueeze(-1) * grads[j]
    conflict = (grads[1:] * grads[0:1]).sum(-1) < 0
    return out.sum(0), conflict
