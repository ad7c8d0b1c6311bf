"""Audit two fitted models on held-out data: prediction and explanation BoP, tests,
the fitted BoP family and the reliability bound for the real group sizes."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from .._validation import check_X, check_binary_y, check_groups, check_numeric_y
from ..errors import ConfigError
from .bop import audit_predictions, benefit_of_personalization, pointwise_loss
from .bounds import bound_for_data, chi2_per_sample, fit_bop_family, k_max
from .explain import explanation_costs
from .guard import check_same_features, predict_p1
from .stats import verdicts


@dataclass
class AuditResult:
    """Tidy audit table plus the reliability analysis."""

    table: pd.DataFrame
    family: dict
    reliability: dict = field(default_factory=dict)
    task: str = "classification"

    def summary_lines(self) -> list[str]:
        r = self.reliability
        loss = "squared error" if self.task == "regression" else "0-1 loss"
        fam = self.family
        params = "".join(f", {k} {fam[k]:.4g}" for k in ("sigma", "laplace_b")
                         if fam.get(k) is not None)
        kmax = r.get("k_max")
        return [
            f"individual BoP ({loss}) family: {fam['family']}{params}"
            + (f"; k_max = {kmax:.2f} binary attributes could be validated on "
               f"{r['n_rows']} rows at eps={r['eps']}" if kmax is not None else ""),
            f"P_e lower bound for {r['n_groups']} groups of sizes {r['group_sizes']} at "
            f"eps={r['eps']}: {r['pe_lower_bound']:.3f} -> "
            + ("a test on this data can be informative (P_e < 0.5)" if r["informative"]
               else "no test on this data can reliably detect a benefit of eps (P_e >= 0.5)"),
        ]


def torch_forward(model: Any):
    """``forward(x, codes) -> P(y=1)`` of a fitted noharm NetClassifier (runs averaged)."""
    if not hasattr(model, "_run_logits"):
        raise ConfigError(f"explanation costs need a differentiable noharm model, got "
                          f"{type(model).__name__}; audit it with explain=False.")
    routing = getattr(model, "requires_groups_predict", False)

    regression = getattr(model, "_regression", False)

    def forward(x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        model.net_.eval()
        out = model._run_logits(x, codes.numpy() if routing else None)
        return (out if regression else torch.sigmoid(out)).mean(0)
    return forward


def audit_models(h0: Any, hp: Any, X: Any, y: Any, *, sensitive_features: Any,
                 explain: bool = True, method: str = "integrated_gradients",
                 top_frac: float = 0.4, n_boot: int = 1000, alpha: float = 0.05,
                 eps: float = 0.01, random_state: int = 0,
                 baseline: str | np.ndarray = "mean") -> AuditResult:
    """Audit the personalized model ``hp`` against the generic ``h0`` on held-out data.

    Returns per group (and population, min_group): prediction BoP (0-1 loss with exact
    McNemar p-value, log-loss) and, with ``explain``, explanation BoP (sufficiency,
    incomprehensiveness from ``method`` attributions), each with a stratified-bootstrap
    95 % CI and a verdict.

    ``baseline``: the values a removed feature takes in the explanation costs — ``"mean"``
    (default): h0's training-row means (from its standardisation, so no audited row shapes
    them); ``"zero"``: zeros in raw units (the seed's choice, far outside the data for
    age or cholesterol); or an array with one value per feature.
    """
    check_same_features(h0, hp)
    Xa, _ = check_X(X, allow_nan=True)        # the models check their own inputs
    task = "regression" if getattr(hp, "_regression", False) else "classification"
    if getattr(h0, "_regression", False) != (task == "regression"):
        raise ConfigError("h0 and hp must both be classifiers or both regressors.")
    groups = check_groups(sensitive_features, n_rows=Xa.shape[0])
    if task == "regression":
        y01 = check_numeric_y(y, n_rows=Xa.shape[0])
        p0, pp = (_predict_reg(m, X, groups) for m in (h0, hp))
    else:
        y01, _ = check_binary_y(y, n_rows=Xa.shape[0])
        p0, pp = predict_p1(h0, X, groups), predict_p1(hp, X, groups)
    table = audit_predictions(y01, p0, pp, groups, task=task, n_boot=n_boot, alpha=alpha,
                              random_state=random_state)
    if explain:
        base = explanation_baseline(h0, baseline, Xa.shape[1])
        frames = [table]
        codes = {}
        for name, m in (("h0", h0), ("hp", hp)):
            c = m._group_codes(groups) if getattr(m, "requires_groups_predict", False) else None
            codes[name] = explanation_costs(torch_forward(m), Xa, c, method=method,
                                            top_frac=top_frac, baseline=base)
        for k, metric in enumerate(("sufficiency", "incomprehensiveness")):
            t = benefit_of_personalization(codes["h0"][metric], codes["hp"][metric], groups,
                                           n_boot=n_boot, random_state=random_state + 10 + k)
            t["p_value"] = np.nan
            t["verdict"] = verdicts(t["ci_low"].to_numpy(), t["ci_high"].to_numpy(), None,
                                    t["bop"].to_numpy(), alpha)
            t.insert(0, "metric", f"{metric}[{method}]")
            frames.append(t)
        table = pd.concat(frames, ignore_index=True)
    loss = "squared_error" if task == "regression" else "zero_one"
    d = pointwise_loss(y01, p0, loss) - pointwise_loss(y01, pp, loss)
    fam = fit_bop_family(d)
    sizes = [int((groups == g).sum()) for g in np.unique(groups)]
    pe = bound_for_data(sizes, eps, fam)
    c = chi2_per_sample(eps, fam["family"], sigma=fam.get("sigma"),
                        laplace_b=fam.get("laplace_b"))
    reliability = {"eps": eps, "n_groups": len(sizes), "group_sizes": sizes,
                   "family": fam["family"], "pe_lower_bound": pe, "informative": pe < 0.5,
                   "n_rows": int(sum(sizes)), "k_max": k_max(float(sum(sizes)), c),
                   "task": task}
    return AuditResult(table=table, family=fam, reliability=reliability, task=task)


def explanation_baseline(model: Any, baseline: str | np.ndarray, n_features: int
                         ) -> np.ndarray | None:
    """The baseline of the explanation costs: ``"mean"`` the model's training-row means
    (averaged over its runs and, for a decoupled model, its subgroup networks), ``"zero"``
    None (zeros), or the given values."""
    if isinstance(baseline, str):
        if baseline == "zero":
            return None
        if baseline != "mean":
            raise ConfigError(f"baseline must be 'mean', 'zero' or one value per feature, got "
                              f"{baseline!r}.")
        net = getattr(model, "net_", None)
        nets = list(net) if isinstance(net, torch.nn.ModuleList) else [net]
        means = [n.scale.mean.detach()[:, 0, :n_features].mean(0) for n in nets
                 if n is not None and hasattr(n, "scale")]
        if not means:
            raise ConfigError(f"{type(model).__name__} keeps no training means; pass "
                              "baseline='zero' or an array.")
        return torch.stack(means).mean(0).numpy().astype(np.float32)
    return np.asarray(baseline, dtype=np.float32)


def _predict_reg(model: Any, X: Any, groups: np.ndarray) -> np.ndarray:
    import inspect
    if "sensitive_features" in inspect.signature(model.predict).parameters:
        return np.asarray(model.predict(X, sensitive_features=groups), dtype=float)
    return np.asarray(model.predict(X), dtype=float)
