"""Benefit of personalization (BoP), per subgroup, with stratified-bootstrap CIs.

Cost of a model h on group s: the mean loss over the group.  BoP(s) = C(h0, s) - C(hp, s)
(positive: the personalized model hp helps s).  Population BoP likewise over all rows;
the minimal group BoP is gamma = min_s BoP(s) (DESIGN §4, arXiv 2502.02786).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .._validation import check_choice, check_positive_int
from ..errors import ConfigError, GroupError
from ..losses import LOSSES, pointwise_loss  # noqa: F401  (re-exported)
from .stats import mcnemar_exact, verdicts

def benefit_of_personalization(loss0: np.ndarray, lossp: np.ndarray, groups: np.ndarray, *,
                               n_boot: int = 1000, level: float = 0.95,
                               random_state: int = 0) -> pd.DataFrame:
    """Group, population and minimal-group BoP with stratified-bootstrap CIs.

    Rows are resampled with replacement within each group (group sizes kept), and
    every replicate recomputes all group BoPs, the population BoP (row-weighted) and
    gamma = min over groups, so the CIs of gamma account for the minimum.

    Returns
    -------
    DataFrame with one row per group, then ``population`` and ``min_group``; columns
    group, n, cost_h0, cost_hp, bop, ci_low, ci_high.
    """
    check_positive_int(n_boot, name="n_boot", minimum=10)
    loss0 = np.asarray(loss0, float)
    lossp = np.asarray(lossp, float)
    groups = np.asarray(groups).astype(str)
    if not (len(loss0) == len(lossp) == len(groups)):
        raise ConfigError("loss0, lossp and groups need the same length.")
    names, counts = np.unique(groups, return_counts=True)
    for g, c in zip(names, counts):
        if c < 2:
            raise GroupError(f"group {str(g)!r} has {c} row in the audit data; a BoP and its "
                             "CI need at least 2 rows: merge it or audit on more data.")
    d = loss0 - lossp
    rng = np.random.default_rng(random_state)
    boot = np.empty((n_boot, len(names)))
    rows = []
    for j, g in enumerate(names):
        dg = d[groups == g]
        idx = rng.integers(0, len(dg), size=(n_boot, len(dg)))
        boot[:, j] = dg[idx].mean(1)
    pop_boot = boot @ (counts / counts.sum())
    gamma_boot = boot.min(1)
    lo, hi = (1 - level) / 2, 1 - (1 - level) / 2
    for j, g in enumerate(names):
        m = groups == g
        rows.append({"group": g, "n": int(counts[j]), "cost_h0": loss0[m].mean(),
                     "cost_hp": lossp[m].mean(), "bop": d[m].mean(),
                     "ci_low": np.quantile(boot[:, j], lo), "ci_high": np.quantile(boot[:, j], hi)})
    group_bop = np.array([r["bop"] for r in rows])
    rows.append({"group": "population", "n": int(len(d)), "cost_h0": loss0.mean(),
                 "cost_hp": lossp.mean(), "bop": d.mean(),
                 "ci_low": np.quantile(pop_boot, lo), "ci_high": np.quantile(pop_boot, hi)})
    worst = int(np.argmin(group_bop))
    rows.append({"group": "min_group", "n": int(counts[worst]),
                 "cost_h0": rows[worst]["cost_h0"], "cost_hp": rows[worst]["cost_hp"],
                 "bop": group_bop.min(), "ci_low": np.quantile(gamma_boot, lo),
                 "ci_high": np.quantile(gamma_boot, hi)})
    return pd.DataFrame(rows)


def audit_predictions(y: np.ndarray, pred0: np.ndarray, predp: np.ndarray, groups: np.ndarray,
                      *, task: str = "classification", n_boot: int = 1000,
                      alpha: float = 0.05, random_state: int = 0) -> pd.DataFrame:
    """Tidy prediction audit of h0 against hp.

    Classification: ``pred0``/``predp`` are P(y = 1); metrics ``zero_one`` (with an exact
    McNemar p-value and verdict per group), ``log_loss`` and ``brier`` (the Brier score, a
    calibration cost: BoP > 0 means hp's probabilities are better calibrated and sharper
    for the group).  Regression: predictions,
    metric ``squared_error`` (verdict from the bootstrap CI).

    Returns
    -------
    DataFrame: metric, group, n, cost_h0, cost_hp, bop, ci_low, ci_high, p_value, verdict,
    of_group (the group the ``min_group`` row is; its McNemar p-value is multiplied by
    the number of groups, since that group was chosen after looking at all of them).
    """
    check_choice(task, name="task", choices=("classification", "regression"))
    y = np.asarray(y)
    groups = np.asarray(groups).astype(str)
    pred0, predp = np.asarray(pred0, float), np.asarray(predp, float)
    if not (len(y) == len(pred0) == len(predp) == len(groups)):
        raise ConfigError("y, both predictions and the groups need the same length.")
    metrics = (["zero_one", "log_loss", "brier"] if task == "classification" else
               ["squared_error"])
    frames = []
    for k, metric in enumerate(metrics):
        l0, lp = pointwise_loss(y, pred0, metric), pointwise_loss(y, predp, metric)
        t = benefit_of_personalization(l0, lp, groups, n_boot=n_boot,
                                       random_state=random_state + k)
        pv = None
        if metric == "zero_one":
            per_group = t.iloc[:-2]                     # rows before population, min_group
            worst = per_group.loc[per_group["bop"].idxmin(), "group"]
            rows = [groups == g for g in per_group["group"]]
            rows += [np.ones(len(y), bool), groups == worst]
            pv = np.array([mcnemar_exact(l0[m] == 0, lp[m] == 0)[2] for m in rows])
            # the minimal group was picked after looking at all k groups: Bonferroni
            pv[-1] = min(1.0, len(per_group) * pv[-1])
        t["p_value"] = pv if pv is not None else np.nan
        t["verdict"] = verdicts(t["ci_low"].to_numpy(), t["ci_high"].to_numpy(), pv,
                                t["bop"].to_numpy(), alpha)
        worst_name = t.iloc[:-2].loc[t.iloc[:-2]["bop"].idxmin(), "group"]
        t["of_group"] = ""
        t.loc[t["group"] == "min_group", "of_group"] = worst_name
        t.insert(0, "metric", metric)
        frames.append(t)
    return pd.concat(frames, ignore_index=True)
