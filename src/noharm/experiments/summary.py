"""Summaries of tidy study results (DESIGN §9): per subgroup x model x metric, with gains
against a reference, intervals, Holm-adjusted p-values and verdicts; and the per-split
summary of the fairness, mixed and debias studies."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..inference import (corrected_t_interval, corrected_t_test, holm, paired_bootstrap,
                         verdict)

RUN_KEYS = ["outer_split", "seed", "fold"]
#: The summary.csv contract of the personalization study (DESIGN §9).
SUMMARY_COLUMNS = ["subgroup", "model", "metric", "n_test", "mean", "sd", "reference", "gain",
                   "gain_ci_low", "gain_ci_high", "p_value", "p_holm", "verdict"]


#: metrics where a lower value is better (a negative gain "helps")
LOWER_IS_BETTER = {"mse", "mae", "log_loss", "dp_difference", "eqodds_difference", "brier",
                   "ece"}


def _mean_present(v: np.ndarray) -> float:
    """Mean of the values that are not NaN (NaN when none is), as pandas' ``mean``."""
    v = v[~np.isnan(v)]
    return float(v.mean()) if len(v) else float("nan")


def gain_summary(results: pd.DataFrame, reference: str, test_train_ratio: float,
                 alpha: float = 0.05, row_diffs: dict | None = None,
                 row_metric: str = "accuracy") -> pd.DataFrame:
    """One row per subgroup x model x metric (:data:`SUMMARY_COLUMNS`).

    ``mean``/``sd``: over runs (and outer splits).  ``gain``: mean paired per-run
    difference model - ``reference`` (in the metric's units).  Interval and two-sided
    p-value: with several outer splits the corrected resampled t over the splits' mean
    gains (:func:`~noharm.inference.corrected_t_interval`); with one, a bootstrap over
    the subgroup's test rows of the run-averaged per-row difference (accuracy, from
    ``row_diffs[(subgroup, model)]``; the other metrics get no interval then).
    ``p_holm``: Holm over the subgroups (``all`` included) of one model and metric (DESIGN
    §9: p-values across groups are Holm-adjusted); ``verdict``: helps / harms / cannot
    tell at ``alpha``.
    """
    keys = ["subgroup", "metric", *RUN_KEYS]
    ref = results.loc[results["model"] == reference, keys + ["value"]]
    # one merge pairs every run with the reference's same run (aligning a Series per group
    # took 90 % of the summary's time)
    paired_all = results.merge(ref.rename(columns={"value": "_ref"}), on=keys, how="left",
                               validate="many_to_one")
    values = results["value"].to_numpy(dtype=float)
    diffs = values - paired_all["_ref"].to_numpy(dtype=float)
    splits, sizes = results["outer_split"].to_numpy(), results["n"].to_numpy(dtype=float)
    groups = results.groupby(["subgroup", "model", "metric"], sort=False).indices
    rows = []
    for (sub, model, metric), at in groups.items():
        v = values[at]
        ok = v[~np.isnan(v)]                 # NaN: undefined (e.g. AUROC of a 1-class group)
        row = {"subgroup": sub, "model": model, "metric": metric,
               "n_test": _mean_present(sizes[at]),
               "mean": float(ok.mean()) if len(ok) else float("nan"),
               "sd": float(ok.std(ddof=1)) if len(ok) > 1 else float("nan"),
               "reference": reference, "gain": np.nan, "gain_ci_low": np.nan,
               "gain_ci_high": np.nan, "p_value": np.nan}
        if model != reference and len(ref):
            diff, split = diffs[at], splits[at]
            keep = ~np.isnan(diff)
            if keep.any():
                diff, split = diff[keep], split[keep]
                row["gain"] = float(diff.mean())
                per_split = np.array([diff[split == o].mean() for o in np.unique(split)])
                if len(per_split) >= 2:
                    row["gain_ci_low"], row["gain_ci_high"] = corrected_t_interval(
                        per_split, test_train_ratio)
                    row["p_value"] = corrected_t_test(per_split, test_train_ratio)
                elif row_diffs is not None and metric == row_metric and \
                        (sub, model) in row_diffs:
                    row["gain_ci_low"], row["gain_ci_high"], row["p_value"] = \
                        paired_bootstrap(row_diffs[(sub, model)])
        rows.append(row)
    out = pd.DataFrame(rows)
    out["p_holm"] = np.nan
    for _, idx in out.groupby(["model", "metric"], sort=False).groups.items():
        out.loc[idx, "p_holm"] = holm(out.loc[idx, "p_value"].to_numpy())
    out["verdict"] = [("reference" if mo == reference else
                       verdict(-g if me in LOWER_IS_BETTER else g, p, alpha))
                      for mo, me, g, p in zip(out["model"], out["metric"], out["gain"],
                                              out["p_holm"])]
    order = {g: i for i, g in enumerate(sorted(out["subgroup"].unique(),
                                               key=lambda g: (g == "all", g)))}
    out = out.assign(_o=out["subgroup"].map(order)).sort_values(["_o"], kind="stable")
    return out.drop(columns="_o")[SUMMARY_COLUMNS].reset_index(drop=True)


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
