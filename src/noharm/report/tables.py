"""Markdown tables of a protocol summary (see :func:`noharm.experiments.summarize`)."""
from __future__ import annotations

import math

import pandas as pd

LABELS = {"generic": "generic", "decoupled": "decoupled (DCP)",
          "conditional-bias": "conditional bias", "logreg": "logistic regression",
          "harm-guard(decoupled)": "harm guard (DCP)",
          "harm-guard(conditional-bias)": "harm guard (cond. bias)"}


def _pct(mean: float, sd: float, signed: bool = False) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    head = f"{100 * mean:+.1f}" if signed else f"{100 * mean:.1f}"
    return head if math.isnan(sd) else f"{head} ± {100 * sd:.1f}"


def _ci(low: float, high: float) -> str:
    return "" if math.isnan(low) else f" [{100 * low:+.1f}, {100 * high:+.1f}]"


def markdown_table(df: pd.DataFrame) -> str:
    """A DataFrame as a Markdown table (values as they are)."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, row in df.iterrows():
        lines.append("| " + " | ".join(str(v) for v in row.tolist()) + " |")
    return "\n".join(lines)


def _models(summary: pd.DataFrame) -> list[str]:
    order = list(LABELS)
    return sorted(summary["model"].unique(), key=lambda m: order.index(m) if m in order else 99)


def accuracy_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Subgroup x (accuracy per model, gain vs generic per model), in percent."""
    models = _models(summary)
    rows = []
    for group, d in summary.groupby("group", sort=False):
        d = d.set_index("model")
        row = {"subgroup": group, "n_test": f"{d['n_test'].iloc[0]:g}"}
        for m in models:
            row[f"acc {LABELS.get(m, m)}"] = (_pct(d.loc[m, "accuracy_mean"],
                                                   d.loc[m, "accuracy_sd"])
                                              if m in d.index else "–")
        for m in models:
            if m == "generic" or "generic" not in d.index:
                continue
            if m in d.index:
                r = d.loc[m]
                cell = _pct(r["gain_mean"], r["gain_sd"], signed=True) + _ci(r["gain_ci_low"],
                                                                            r["gain_ci_high"])
            else:
                cell = "–"
            row[f"gain {LABELS.get(m, m)}"] = cell
        rows.append(row)
    return pd.DataFrame(rows)


def secondary_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Subgroup x model: AUROC and balanced accuracy (mean ± sd, percent)."""
    rows = []
    for _, r in summary.iterrows():
        rows.append({"subgroup": r["group"], "model": LABELS.get(r["model"], r["model"]),
                     "AUROC": _pct(r["auroc_mean"], r["auroc_sd"]),
                     "balanced accuracy": _pct(r["balanced_accuracy_mean"],
                                               r["balanced_accuracy_sd"]),
                     "runs": int(r["runs"])})
    return pd.DataFrame(rows)


def markdown_report(summary: pd.DataFrame, title: str = "noharm protocol") -> str:
    """Both tables as one Markdown document."""
    return "\n\n".join([
        f"## {title}",
        "Accuracy (%) per subgroup, mean ± sd over runs; gain = paired per-run difference "
        "against the generic model (mean ± sd, 95 % CI over outer splits when there are several).",
        markdown_table(accuracy_table(summary)),
        "AUROC and balanced accuracy (%), mean ± sd over runs.",
        markdown_table(secondary_table(summary)),
    ]) + "\n"
