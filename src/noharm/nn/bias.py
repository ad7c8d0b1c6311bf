"""The conditional-bias network of "Towards personalized healthcare without harm
via bias modulation" (DESIGN §3).

An attribute predictor (an :class:`EnsembleMLP` classifying the subgroup from
X) yields K embeddings, its last K hidden activations.  Embedding k passes a
Linear + ReLU to become a bias vector of the label network's width, added to
the pre-activation of the label network's k-th-from-last hidden layer.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .layers import EnsembleLinear, EnsembleMLP, Standardize


class ConditionalBiasNet(nn.Module):
    """Attribute predictor + bias projections + label network, with an ensemble axis."""

    def __init__(self, seeds: Sequence[int], in_features: int, n_groups: int, *,
                 label_hidden: Sequence[int], attr_hidden: Sequence[int], n_bias: int = 1,
                 dropout: float = 0.2, **inputs):
        super().__init__()
        seeds = [int(s) for s in seeds]
        self.scale = Standardize(len(seeds), in_features, **inputs)
        in_features = self.scale.n_out
        if not 1 <= n_bias <= min(len(label_hidden), len(attr_hidden)):
            raise ValueError("n_bias out of range")  # validated by the estimator first
        self.attr = EnsembleMLP([s + 101 for s in seeds], in_features, attr_hidden, n_groups,
                                dropout)
        self.label = EnsembleMLP(seeds, in_features, label_hidden, 1, dropout)
        # projection k (k = 1..K) maps embedding k to the width of label layer -k
        self.proj = nn.ModuleList(
            EnsembleLinear([s * 31 + 17 + k for s in seeds], attr_hidden[-k], label_hidden[-k])
            for k in range(1, n_bias + 1))
        self.n_bias = n_bias
        self.freeze_attr = False

    def train(self, mode: bool = True) -> "ConditionalBiasNet":
        """Like nn.Module.train, but a frozen attribute predictor stays in eval mode."""
        super().train(mode)
        if self.freeze_attr:
            self.attr.eval()
        return self

    def set_generator(self, g: torch.Generator | None) -> None:
        self.attr.generator = g
        self.label.generator = g

    def bias_vectors(self, hidden_attr: list[torch.Tensor]) -> dict[int, torch.Tensor]:
        """Map the attribute predictor's hidden activations to ``{-k: bias_k}``."""
        return {-k: torch.relu(self.proj[k - 1](hidden_attr[-k]))
                for k in range(1, self.n_bias + 1)}

    def attribute_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Stage 1 output: subgroup logits ``(E, B, G)``."""
        return self.attr(self.scale(x))[0]

    def forward(self, x: torch.Tensor, use_bias: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(label_logit (E,B,1), attribute_logits (E,B,G))``."""
        x = self.scale(x)
        if self.freeze_attr:
            with torch.no_grad():
                attr_logits, hidden = self.attr(x)
        else:
            attr_logits, hidden = self.attr(x)
        biases = self.bias_vectors(hidden) if use_bias else None
        logit, _ = self.label(x, biases)
        return logit, attr_logits
