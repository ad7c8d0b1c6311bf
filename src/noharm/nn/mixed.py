"""Mixed-effects network modules (DESIGN §5; Nguyen, Wang & Montillo's fair MEDL on ARMED).

:class:`MixedEffectsNet` has one member (leading axis of size 1, as every noharm
module): a fixed-effects MLP on standardised inputs, and a random-effects layer of
per-cluster slopes and intercepts with a factorised Gaussian variational posterior.
:class:`Adversary` is the small classifier used both as the cluster adversary and as
the fairness adversaries; adversaries live outside the main module and are trained
by their own optimiser in alternation with it.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .layers import EnsembleMLP, Standardize


class MixedEffectsNet(nn.Module):
    """Fixed effects + random effects for ``n_clusters`` seen clusters.

    ``forward(x (1,B,F), cluster (B,), sample)`` returns ``(fe, me, hidden)``: the
    fixed-effects output ``(1,B)``, the mixed output ``fe + xs·slope(z) + intercept(z)``
    ``(1,B)`` (``xs`` the standardised input) and the fixed-effects hidden activations.
    Rows with cluster code ``-1`` (unseen) get no random effect: ``me == fe``.
    ``sample=True`` draws the random effects from the posterior
    (reparameterization); otherwise the posterior means are used.
    """

    def __init__(self, seed: int, n_features: int, hidden: list[int], dropout: float,
                 n_clusters: int, prior_sd: float = 0.1, init_sd: float = 0.01, **inputs):
        super().__init__()
        self.scale = Standardize(1, n_features, **inputs)
        n_features = self.scale.n_out
        self.fe = EnsembleMLP([seed], n_features, hidden, 1, dropout)
        self.slope_mu = nn.Parameter(torch.zeros(1, n_clusters, n_features))
        self.slope_logsd = nn.Parameter(torch.full((1, n_clusters, n_features),
                                                   math.log(init_sd)))
        self.icpt_mu = nn.Parameter(torch.zeros(1, n_clusters))
        self.icpt_logsd = nn.Parameter(torch.full((1, n_clusters), math.log(init_sd)))
        self.prior_sd = float(prior_sd)
        self.generator: torch.Generator | None = None

    def set_generator(self, g: torch.Generator | None) -> None:
        self.generator = g
        self.fe.generator = g

    def _draw(self, mu: torch.Tensor, logsd: torch.Tensor, sample: bool) -> torch.Tensor:
        if not sample:
            return mu
        eps = torch.randn(mu.shape, generator=self.generator)
        return mu + torch.exp(logsd) * eps

    def forward(self, x: torch.Tensor, cluster: torch.Tensor | None, sample: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        xs = self.scale(x)
        out, hidden = self.fe(xs)
        fe = out.squeeze(-1)
        if cluster is None:
            return fe, fe, hidden
        seen = cluster >= 0
        idx = cluster.clamp(min=0)
        slope = self._draw(self.slope_mu, self.slope_logsd, sample)[:, idx]    # (1,B,F)
        icpt = self._draw(self.icpt_mu, self.icpt_logsd, sample)[:, idx]      # (1,B)
        re = (xs * slope).sum(-1) + icpt
        return fe, fe + re * seen.to(re.dtype), hidden

    def kl(self) -> torch.Tensor:
        """KL(q || N(0, prior_sd²)) summed over every random-effect parameter, ``(1,)``."""
        total = 0.0
        p = self.prior_sd
        for mu, logsd in ((self.slope_mu, self.slope_logsd), (self.icpt_mu, self.icpt_logsd)):
            var = torch.exp(2 * logsd)
            total = total + (math.log(p) - logsd + (var + mu ** 2) / (2 * p ** 2) - 0.5).flatten(
                1).sum(1)
        return total


class Adversary(nn.Module):
    """A small MLP classifier (inputs -> ``width`` ReLU units -> ``n_classes`` logits)."""

    def __init__(self, n_inputs: int, n_classes: int, width: int, seed: int):
        super().__init__()
        g = torch.Generator().manual_seed(int(seed))
        self.body = nn.Sequential(nn.Linear(n_inputs, width), nn.ReLU(),
                                  nn.Linear(width, n_classes))
        with torch.no_grad():
            for m in self.body:
                if isinstance(m, nn.Linear):
                    bound = 1 / math.sqrt(m.in_features)
                    m.weight.uniform_(-bound, bound, generator=g)
                    m.bias.uniform_(-bound, bound, generator=g)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z)
