"""Measurements and tables shared by the fairness, mixed-effects and debias studies."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from ...fairness import balanced_accuracy
from ...fairness.metrics import rates_by_group
from ...report.tables import markdown_table


def overall(y: np.ndarray, p: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy and AUROC (NaN where a class is missing)."""
    both = len(np.unique(y)) > 1
    return {"accuracy": float((pred == y).mean()),
            "balanced_accuracy": balanced_accuracy(y, pred) if both else np.nan,
            "auroc": float(roc_auc_score(y, p)) if both else np.nan}


def gap_measures(y: np.ndarray, pred: np.ndarray, g: np.ndarray, kind: str) -> dict[str, float]:
    """Across one attribute's groups: ``worst`` = equal-opportunity gap (max - min TPR)
    and equalized-odds gap (larger of the worst TPR and FPR gaps); ``sd`` = sd of TPR
    and of FPR."""
    tpr, fpr = rates_by_group(y, pred, g)
    if kind == "sd":
        return {"sd_tpr": float(np.std(tpr)), "sd_fpr": float(np.std(fpr))}
    eod = max(tpr) - min(tpr) if len(tpr) > 1 else np.nan
    fgap = max(fpr) - min(fpr) if len(fpr) > 1 else np.nan
    return {"eod_gap": float(eod), "eqodds_gap": float(np.nanmax([eod, fgap]))}


def classification_rows(y: np.ndarray, p: np.ndarray, threshold: float,
                        attributes: pd.DataFrame, gaps: str) -> list[dict]:
    """Overall metrics (subgroup ``all``) and per-attribute gap measures on some rows."""
    pred = (p >= threshold).astype(int)
    rows = [{"metric": k, "value": v, "n": len(y)} for k, v in overall(y, p, pred).items()]
    for attr in attributes.columns:
        g = attributes[attr].to_numpy()
        rows += [{"subgroup": attr, "metric": k, "value": v, "n": len(y)}
                 for k, v in gap_measures(y, pred, g, gaps).items()]
    return rows


def render_wide(summary: pd.DataFrame, models: list[str], *, ci: bool,
                relative: tuple[str, str, str] | None = None,
                extra: dict[str, dict] | None = None) -> str:
    """Subgroup x metric rows, one column per model (mean [CI] or mean ± sd); with
    ``relative=(base, other, label)`` a column 100 * (1 - other / base) for gap and sd
    metrics; ``extra`` adds columns keyed by subgroup."""
    rows = []
    for (sub, metric), d in summary.groupby(["subgroup", "metric"], sort=False):
        d = d.set_index("model")
        row = {"attribute": sub, "metric": metric}
        for m in models:
            if m not in d.index or np.isnan(d.loc[m, "mean"]):
                row[m] = "–"
            elif ci and not np.isnan(d.loc[m, "ci_low"]):
                row[m] = f"{d.loc[m, 'mean']:.3f} [{d.loc[m, 'ci_low']:.3f}, " \
                         f"{d.loc[m, 'ci_high']:.3f}]"
            else:
                sd = 0.0 if np.isnan(d.loc[m, "sd"]) else d.loc[m, "sd"]
                row[m] = f"{d.loc[m, 'mean']:.4f} ± {sd:.4f}"
        if relative is not None:
            base, other, label = relative
            cell = "–"
            if (metric.endswith("_gap") or metric.startswith("sd_")) and \
                    base in d.index and other in d.index and d.loc[base, "mean"] > 0:
                cell = f"{100 * (1 - d.loc[other, 'mean'] / d.loc[base, 'mean']):+.0f} %"
            row[label] = cell
        for col, values in (extra or {}).items():
            row[col] = values.get(sub, "–") if relative is None or row.get(
                relative[2], "–") != "–" else "–"
        rows.append(row)
    return markdown_table(pd.DataFrame(rows))
