"""Summaries of tidy protocol results: per subgroup x model, and gains vs generic."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..inference import corrected_t_interval

RUN_KEYS = ["outer_split", "seed", "fold"]


def summarize(results: pd.DataFrame, baseline: str = "generic",
              test_train_ratio: float = 0.0) -> pd.DataFrame:
    """One row per (group, model): n_test, mean/sd of each metric, gain vs ``baseline``.

    The gain is the paired per-run difference of accuracy (model - baseline):
    mean and sd over runs.  With several outer splits, ``gain_ci_low/high`` is a
    95 % corrected resampled t-interval over the outer splits' mean gains (runs inside
    one split share a test set, so they are not independent; ``test_train_ratio`` =
    n_test / n_train, :func:`noharm.inference.corrected_t_interval`); likewise
    ``accuracy_ci_*``.
    """
    wide = results.pivot_table(index=["model", "group", *RUN_KEYS], columns="metric",
                               values="value", aggfunc="first").reset_index()
    n = results.groupby(["model", "group"])["n"].mean()
    rows = []
    base = wide[wide["model"] == baseline].set_index(["group", *RUN_KEYS])["accuracy"]
    for (model, group), d in wide.groupby(["model", "group"], sort=False):
        row = {"group": group, "model": model, "n_test": float(n.loc[(model, group)]),
               "runs": len(d)}
        for m in ("accuracy", "auroc", "balanced_accuracy"):
            row[f"{m}_mean"] = float(d[m].mean())
            row[f"{m}_sd"] = float(d[m].std(ddof=1)) if len(d) > 1 else float("nan")
        split_acc = d.groupby("outer_split")["accuracy"].mean().to_numpy()
        row["accuracy_ci_low"], row["accuracy_ci_high"] = corrected_t_interval(
            split_acc, test_train_ratio)
        if len(base) and model != baseline:
            paired = d.set_index(["group", *RUN_KEYS])["accuracy"] - base
            paired = paired.dropna()
            row["gain_mean"] = float(paired.mean()) if len(paired) else float("nan")
            row["gain_sd"] = float(paired.std(ddof=1)) if len(paired) > 1 else float("nan")
            per_split = paired.groupby(level="outer_split").mean().to_numpy()
            row["gain_ci_low"], row["gain_ci_high"] = corrected_t_interval(
                per_split, test_train_ratio)
        else:
            row.update(gain_mean=np.nan, gain_sd=np.nan, gain_ci_low=np.nan, gain_ci_high=np.nan)
        rows.append(row)
    out = pd.DataFrame(rows)
    order = {g: i for i, g in enumerate(sorted(out["group"].unique(), key=lambda g: (g == "all", g)))}
    out["_o"] = out["group"].map(order)
    return out.sort_values(["_o", "model"]).drop(columns="_o").reset_index(drop=True)


def split_summary(results: pd.DataFrame, test_train_ratio: float) -> pd.DataFrame:
    """Per (subgroup, metric, model): mean and sd over outer splits (after averaging the
    runs inside a split) and a 95 % corrected resampled t-interval of the mean."""
    per_split = results.groupby(["subgroup", "metric", "model", "outer_split"], sort=False)[
        "value"].mean()
    rows = []
    for (sub, metric, model), v in per_split.groupby(level=[0, 1, 2], sort=False):
        low, high = corrected_t_interval(v.to_numpy(), test_train_ratio)
        rows.append({"subgroup": sub, "metric": metric, "model": model,
                     "mean": float(v.mean()),
                     "sd": float(v.std(ddof=1)) if len(v) > 1 else float("nan"),
                     "ci_low": low, "ci_high": high, "outer_splits": len(v)})
    return pd.DataFrame(rows)
