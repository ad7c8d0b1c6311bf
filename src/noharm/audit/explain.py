"""Explanation quality costs from feature attributions (captum).

For a model h and a row x, with the top-r attributed features (largest |attribution|,
r = ``top_frac`` of the features, at least 1):

* sufficiency      = loss(h(x), h(x with all but the top-r features set to the baseline))
* incomprehensiveness = -loss(h(x), h(x with the top-r features set to the baseline))

Both compare the model with its own prediction, not with the label; lower is better for
both.  ``loss`` is ``abs`` (|p - p'| on P(y = 1), default) or ``zero_one`` (the predicted
class changes).  Attributions: Integrated Gradients (zero baseline, 50 steps) by default.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from captum.attr import FeatureAblation, InputXGradient, IntegratedGradients, Saliency

from .._validation import check_choice, check_fraction
from ..errors import ConfigError

ATTRIBUTION_METHODS = {
    "integrated_gradients": IntegratedGradients,
    "input_x_gradient": InputXGradient,
    "saliency": Saliency,
    "feature_ablation": FeatureAblation,
}
Forward = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _attribute(forward: Forward, x: torch.Tensor, codes: torch.Tensor, method: str,
               baseline: torch.Tensor, n_steps: int, internal_batch_size: int) -> torch.Tensor:
    explainer = ATTRIBUTION_METHODS[method](forward)
    kw: dict = {"additional_forward_args": (codes,)}
    if method == "integrated_gradients":
        kw.update(baselines=baseline, n_steps=n_steps, internal_batch_size=internal_batch_size)
    elif method == "feature_ablation":
        kw.update(baselines=baseline)
    x = x.clone().requires_grad_(method != "feature_ablation")
    return explainer.attribute(x, **kw).detach()


def explanation_costs(forward: Forward, X: np.ndarray, codes: np.ndarray | None = None, *,
                      method: str = "integrated_gradients", top_frac: float = 0.4,
                      baseline: np.ndarray | None = None, loss: str = "abs",
                      n_steps: int = 50, batch_size: int = 2048) -> dict[str, np.ndarray]:
    """Per-row sufficiency and incomprehensiveness costs of a differentiable model.

    Parameters
    ----------
    forward : ``forward(x (n, F) float tensor, codes (n,) long tensor) -> P(y=1) (n,)``;
        ``codes`` are subgroup codes for models that route by group (ignored otherwise).
    X : (n, F) features.
    method : one of :data:`ATTRIBUTION_METHODS`.
    top_frac : share of features kept (sufficiency) or removed (incomprehensiveness).
    baseline : (F,) replacement values; default zeros (DESIGN §4).
    loss : ``abs`` or ``zero_one``.
    n_steps : Integrated-Gradients steps.
    batch_size : rows per attribution batch (bounds memory).

    Returns
    -------
    dict with ``sufficiency``, ``incomprehensiveness`` and ``attributions`` (n, F).
    """
    check_choice(method, name="method", choices=tuple(ATTRIBUTION_METHODS))
    check_choice(loss, name="loss", choices=("abs", "zero_one"))
    check_fraction(top_frac, name="top_frac", high=1.0 + 1e-9)
    X = np.asarray(X, dtype=np.float32)
    n, F = X.shape
    r = top_r(F, top_frac)
    base = np.zeros(F, np.float32) if baseline is None else np.asarray(baseline, np.float32)
    if base.shape != (F,):
        raise ConfigError(f"baseline needs one value per feature ({F}), got shape {base.shape}.")
    codes_all = np.zeros(n, np.int64) if codes is None else np.asarray(codes, np.int64)
    suff, incomp, attrs = [], [], []
    for start in range(0, n, batch_size):
        sl = slice(start, min(n, start + batch_size))
        x = torch.from_numpy(X[sl])
        c = torch.from_numpy(codes_all[sl])
        b = torch.from_numpy(base).expand_as(x)
        a = _attribute(forward, x, c, method, b, n_steps, batch_size)
        a = torch.nan_to_num(a, nan=0.0)     # a missing cell is imputed: no attribution
        top = torch.topk(a.abs(), r, dim=1).indices
        keep = torch.zeros_like(x, dtype=torch.bool).scatter_(1, top, True)
        with torch.no_grad():
            p = forward(x, c)
            p_suff = forward(torch.where(keep, x, b), c)
            p_comp = forward(torch.where(keep, b, x), c)
        if loss == "abs":
            ls, lc = (p - p_suff).abs(), (p - p_comp).abs()
        else:
            ls = ((p >= 0.5) != (p_suff >= 0.5)).float()
            lc = ((p >= 0.5) != (p_comp >= 0.5)).float()
        suff.append(ls.numpy())
        incomp.append(-lc.numpy())
        attrs.append(a.numpy())
    return {"sufficiency": np.concatenate(suff).astype(float),
            "incomprehensiveness": np.concatenate(incomp).astype(float),
            "attributions": np.concatenate(attrs)}


def top_r(n_features: int, top_frac: float) -> int:
    """Number of features kept/removed: ``round(top_frac * F)``, at least 1."""
    return max(1, int(round(top_frac * n_features)))


__all__ = ["ATTRIBUTION_METHODS", "explanation_costs", "top_r"]
