"""Shared parts of the debiasing methods: the rows they read (arrays or a torch
``Dataset`` read lazily in batches, e.g. images), model conversion, evaluation with the
balanced-accuracy threshold, selection objectives, results."""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from .._device import resolve_device
from .._validation import check_choice
from ..errors import ConfigError, GroupError
from ..fairness import best_threshold, eod_proxy, spd_proxy
from ..nn.rows import RowData, logits_of, model_device  # noqa: F401  (re-exported)
from ..fairness.metrics import (check_protected,
                                equal_opportunity_difference, statistical_parity_difference)

BIAS_METRICS = {"spd": statistical_parity_difference, "eod": equal_opportunity_difference}
OBJECTIVES = ("constrained", "indicator")
MIN_BA = 0.52       # the default BA floor never goes below this


class _Standardize(nn.Module):
    """One run's input preparation (median fill, missing indicators, standardisation)."""

    def __init__(self, mean: torch.Tensor, scale: torch.Tensor, fill: torch.Tensor | None,
                 indicators: list[int]):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("scale", scale)
        self.impute = fill is not None
        if self.impute:
            self.register_buffer("fill", fill)
        self.indicators = list(indicators)

    def forward(self, x):
        if self.impute:
            missing = torch.isnan(x)
            x = torch.where(missing, self.fill, x)
            if self.indicators:
                x = torch.cat([x, missing[:, self.indicators].to(x.dtype)], dim=1)
        return (x - self.mean) / self.scale


def as_module(model: Any, run: int = 0) -> nn.Module:
    """A standalone torch classifier ``x (n, F) -> logit (n, 1)``.

    A fitted :class:`~noharm.models.GenericClassifier` becomes an ``nn.Sequential`` of
    standard layers (standardisation, then Linear -> BatchNorm1d -> ReLU -> Dropout blocks,
    then the output Linear) holding run ``run``'s weights; a user's ``nn.Module`` is
    deep-copied.  The input model is never modified.
    """
    if isinstance(model, nn.Module):
        return copy.deepcopy(model)
    net = getattr(model, "net_", None)
    mlp = getattr(net, "mlp", None)
    if mlp is None:
        raise ConfigError(
            f"debiasing takes a fitted GenericClassifier or a torch nn.Module, got "
            f"{type(model).__name__}; convert other models to an nn.Module first.")
    sc = net.scale
    layers: list[nn.Module] = [_Standardize(
        sc.mean[run, 0].clone(), sc.scale[run, 0].clone(),
        sc.fill[run, 0].clone() if sc.impute else None,
        list(sc.indicators))]
    for lin, bn in zip(mlp.linears, mlp.norms):
        w = lin.weight[run].detach()
        layer = nn.Linear(w.shape[0], w.shape[1], bias=False)
        layer.weight.data = w.T.clone()
        norm = nn.BatchNorm1d(w.shape[1])
        norm.weight.data = bn.weight[run, 0].detach().clone()
        norm.bias.data = bn.bias[run, 0].detach().clone()
        norm.running_mean.data = bn.running_mean[run, 0].clone()
        norm.running_var.data = bn.running_var[run, 0].clone()
        layers += [layer, norm, nn.ReLU(), nn.Dropout(mlp.p)]
    head = nn.Linear(mlp.head.weight.shape[1], 1)
    head.weight.data = mlp.head.weight[run].detach().T.clone()
    head.bias.data = mlp.head.bias[run, 0].detach().clone()
    layers.append(head)
    return nn.Sequential(*layers).eval()




def probabilities(model: nn.Module, data: RowData) -> np.ndarray:
    """P(Y = 1) of every row of ``data``, in eval mode, one batch at a time."""
    model.eval()
    with torch.no_grad():
        out = [torch.sigmoid(logits_of(model, x)) for _, x in data.batches()]
    return torch.cat(out).cpu().numpy() if out else np.zeros(0, np.float32)


@dataclass
class Evaluation:
    threshold: float
    balanced_accuracy: float
    bias: float


class Evaluator:
    """Validation data + metric: evaluates a model at its balanced-accuracy threshold.

    ``X``: an array or a torch ``Dataset`` (see :class:`RowData`); ``device``: where the
    model and the batches go (``"cpu"``, ``"auto"``, ``"cuda[:N]"``)."""

    def __init__(self, X: Any, y: Any, protected: Any, metric: str = "spd", *,
                 device: str | torch.device | None = "cpu", batch_size: int = 256):
        check_choice(metric, name="metric", choices=tuple(BIAS_METRICS))
        self.device = resolve_device(device)
        self.data = RowData(X, self.device, batch_size)
        self.y = np.asarray(y).astype(int)
        if len(self.y) != self.data.n:
            raise GroupError(f"X has {self.data.n} rows but y has {len(self.y)}; give one "
                             "label per row.")
        self.multi = not _is_binary(protected)
        if self.multi:                   # any number of groups: worst-pair gap (>= 0)
            from ..fairness.groupwise import _groups
            labels = _groups(protected, len(self.y))
            self.group_names, self.a = np.unique(labels, return_inverse=True)
            if len(self.group_names) < 2:
                raise GroupError("the protected attribute has one group in these rows; "
                                 "debiasing compares at least two.")
        else:
            self.a = check_protected(protected, len(self.y))
        if len(np.unique(self.y)) < 2:
            raise GroupError("the validation labels hold one class only; debiasing needs both.")
        if metric == "eod" and not self.multi:
            for g, name in ((0, "unprivileged (A=0)"), (1, "privileged (A=1)")):
                if not ((self.a == g) & (self.y == 1)).any():
                    raise GroupError(f"no positive labels in the {name} group of the validation "
                                     "data, so EOD is undefined; use --metric spd or more data.")
        if metric == "eod" and self.multi and len(np.unique(self.a[self.y == 1])) < 2:
            raise GroupError("fewer than two groups have positive labels in the validation "
                             "data, so EOD is undefined; use --metric spd or more data.")
        self.metric = metric
        self.yt = torch.as_tensor(self.y).to(self.device)
        self.at = torch.as_tensor(self.a).to(self.device)
        self.n = self.data.n

    def get(self, rows) -> torch.Tensor:
        """Inputs of validation rows ``rows``."""
        return self.data.get(rows)

    def proba(self, model: nn.Module, X: Any = None) -> np.ndarray:
        """Predicted probabilities of the validation rows (or of ``X``), batch by batch."""
        return probabilities(model, self.data if X is None else
                             RowData(X, self.device, self.data.batch_size))

    def proxy_weights(self, model: nn.Module | None = None) -> torch.Tensor:
        """w with proxy(p) = sum_i w_i p_i over all validation rows (the proxies are
        differences of group means), so a full-data gradient is a sum over batches.
        With several groups the proxy is the gap between the groups of the highest and
        lowest soft rate under ``model``'s current probabilities (its subgradient)."""
        keep = (torch.ones_like(self.yt) if self.metric == "spd"
                else (self.yt == 1)).float()
        if not self.multi:
            a = self.at.float()
            w0, w1 = (1 - a) * keep, a * keep
            return w0 / w0.sum().clamp_min(1) - w1 / w1.sum().clamp_min(1)
        p = torch.as_tensor(self.proba(model), device=self.device)
        onehot = torch.nn.functional.one_hot(self.at, len(self.group_names)).float()
        counts = (onehot * keep[:, None]).sum(0)
        rates = (onehot * (keep * p)[:, None]).sum(0) / counts.clamp_min(1)
        valid = counts > 0
        hi = torch.where(valid, rates, torch.full_like(rates, -1.0)).argmax()
        lo = torch.where(valid, rates, torch.full_like(rates, 2.0)).argmin()
        return keep * ((self.at == hi).float() / counts[hi] - (self.at == lo).float()
                       / counts[lo])

    def evaluate(self, model: nn.Module) -> Evaluation:
        p = self.proba(model)
        t, ba = best_threshold(self.y, p)
        pred = (p >= t).astype(int)
        if self.multi:
            from ..fairness import groupwise as gw
            fn = (gw.demographic_parity_difference if self.metric == "spd"
                  else gw.equal_opportunity_difference)
            return Evaluation(t, ba, float(fn(self.y, pred, sensitive_features=self.a)))
        return Evaluation(t, ba, float(BIAS_METRICS[self.metric](self.y, pred, self.a)))

    def proxy(self, proba: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        a = self.at if rows is None else self.at[rows]
        y = self.yt if rows is None else self.yt[rows]
        if self.multi:
            return worst_pair_proxy(proba, a, len(self.group_names),
                                    None if self.metric == "spd" else y)
        if self.metric == "spd":
            return spd_proxy(proba, a)
        return eod_proxy(proba, a, y)


def _is_binary(protected: Any) -> bool:
    if hasattr(protected, "columns"):
        return False
    vals = set(pd.unique(np.asarray(protected).ravel()).tolist())
    return vals <= {0, 1}


def worst_pair_proxy(proba: torch.Tensor, codes: torch.Tensor, n_groups: int,
                     y: torch.Tensor | None = None) -> torch.Tensor:
    """max_g - min_g of the groups' soft rates (mean probability; over Y = 1 rows when
    ``y`` is given: the EOD form), over the groups present; differentiable in ``proba``
    (a subgradient at ties).  0 when fewer than two groups are present."""
    from ..fairness.losses import group_gap_loss
    kind = "spd" if y is None else "eod"
    y = torch.ones_like(codes) if y is None else y
    return group_gap_loss(proba[None], codes.long()[None], y[None], n_groups, kind)[0]


@dataclass
class DebiasResult:
    """What a debiasing method returns.

    ``model`` (intra-processing) or ``postprocessor`` (post-processing) with its decision
    ``threshold``; validation ``balanced_accuracy`` and ``bias`` of the chosen candidate,
    those of the ``original`` model, whether the selection constraint was met (if not, the
    original model came back), and the ``trace`` of every candidate tried.
    """

    method: str
    model: nn.Module | None
    threshold: float
    balanced_accuracy: float
    bias: float
    original: Evaluation
    constraint_met: bool
    trace: pd.DataFrame
    note: str = ""
    postprocessor: Any = None
    extra: Any = None
    predict_fn: Callable | None = field(default=None, repr=False)

    def predict_proba(self, X: Any) -> np.ndarray:
        """P(Y = 1) of the debiased model for new rows (an array or a torch Dataset)."""
        return probabilities(self.model, RowData(X, model_device(self.model)))

    def predict(self, X: Any, protected: Any) -> np.ndarray:
        """Labels for new rows (the protected attribute is needed by post-processing)."""
        if self.predict_fn is not None:
            return self.predict_fn(X, protected)
        return (self.predict_proba(X) >= self.threshold).astype(int)


class Selector:
    """Streams candidates and keeps the best by the objective (DESIGN §5).

    ``constrained``: min |bias| subject to BA >= rho (default rho: max(0.95 x the original
    BA, 0.52), so a model that predicts one class for everyone is never chosen).  ``indicator``: max BA * 1[|bias| < eps].
    Candidates that meet neither keep the original model.
    """

    def __init__(self, model: nn.Module, evaluator: Evaluator, *, objective: str,
                 rho: float | None, eps: float):
        check_choice(objective, name="objective", choices=OBJECTIVES)
        self.original_state = copy.deepcopy(model.state_dict())
        self.original = evaluator.evaluate(model)
        # default floor: 95 % of the original BA, and never chance level (a constant
        # prediction has BA 0.5 and bias 0; seed 004's pruning stops below BA 0.52)
        self.rho = (max(0.95 * self.original.balanced_accuracy, MIN_BA) if rho is None
                    else float(rho))
        self.eps, self.objective = float(eps), objective
        self.best: tuple[float, dict, Evaluation] | None = None
        self.best_extra: Any = None
        self.rows: list[dict] = [{"step": 0, "candidate": "original",
                                  "balanced_accuracy": self.original.balanced_accuracy,
                                  "bias": self.original.bias,
                                  "threshold": self.original.threshold}]

    def score(self, ev: Evaluation) -> float | None:
        if self.objective == "constrained":
            return -abs(ev.bias) if ev.balanced_accuracy >= self.rho else None
        return ev.balanced_accuracy if abs(ev.bias) < self.eps else None

    def offer(self, model: nn.Module, ev: Evaluation, step: int, candidate: str = "",
              extra: Any = None) -> None:
        """Record a candidate; ``extra`` (e.g. pruning masks) is kept with the best one."""
        s = self.score(ev)
        self.rows.append({"step": step, "candidate": candidate,
                          "balanced_accuracy": ev.balanced_accuracy, "bias": ev.bias,
                          "threshold": ev.threshold, "meets_objective": s is not None})
        if s is not None and (self.best is None or s > self.best[0]):
            self.best = (s, copy.deepcopy(model.state_dict()), ev)
            self.best_extra = extra

    def result(self, method: str, model: nn.Module) -> DebiasResult:
        trace = pd.DataFrame(self.rows)
        if self.best is None:
            model.load_state_dict(self.original_state)
            what = (f"BA >= rho = {self.rho:.3f}" if self.objective == "constrained"
                    else f"|bias| < eps = {self.eps}")
            return DebiasResult(method, model, self.original.threshold,
                                self.original.balanced_accuracy, self.original.bias,
                                self.original, False, trace,
                                note=f"no candidate met {what}; the original model is returned")
        best_score, state, ev = self.best
        orig_score = self.score(self.original)
        if orig_score is not None and orig_score >= best_score:
            model.load_state_dict(self.original_state)
            return DebiasResult(method, model, self.original.threshold,
                                self.original.balanced_accuracy, self.original.bias,
                                self.original, True, trace,
                                note="no candidate improved on the original model, "
                                     "which is returned")
        model.load_state_dict(state)
        return DebiasResult(method, model, ev.threshold, ev.balanced_accuracy, ev.bias,
                            self.original, True, trace, extra=self.best_extra)
