"""Markdown tables of a personalization summary (the DESIGN §9 ``summary.csv``: one row
per subgroup x model x metric, gains against the reference)."""
from __future__ import annotations

import math

import pandas as pd

LABELS = {"generic": "generic", "decoupled": "decoupled (DCP)",
          "conditional-bias": "conditional bias", "logreg": "logistic regression",
          "hgb": "gradient boosting", "linreg": "ridge regression", "reference": "reference",
          "guarded": "guarded"}
_ORDER = list(LABELS)


def _pct(mean: float, sd: float = float("nan"), signed: bool = False,
         scale: float = 100.0) -> str:
    """``mean ± sd`` in percent (``scale`` 100) or in the metric's units (``scale`` 1)."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    fmt = ".1f" if scale == 100 else ".3g"
    head = f"{scale * mean:+{fmt}}" if signed else f"{scale * mean:{fmt}}"
    return head if math.isnan(sd) else f"{head} ± {scale * sd:{fmt}}"


def markdown_table(df: pd.DataFrame) -> str:
    """A DataFrame as a Markdown table (values as they are)."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, row in df.iterrows():
        lines.append("| " + " | ".join(str(v) for v in row.tolist()) + " |")
    return "\n".join(lines)


def models_of(summary: pd.DataFrame) -> list[str]:
    return sorted(summary["model"].unique(),
                  key=lambda m: _ORDER.index(m) if m in _ORDER else 99)


def _gain(r: pd.Series, scale: float = 100.0) -> str:
    if isinstance(r["gain"], float) and math.isnan(r["gain"]):
        return "–"
    cell = _pct(r["gain"], signed=True, scale=scale)
    if not math.isnan(r["gain_ci_low"]):
        fmt = ".1f" if scale == 100 else ".3g"
        cell += (f" [{scale * r['gain_ci_low']:+{fmt}}, "
                 f"{scale * r['gain_ci_high']:+{fmt}}]")
    return cell + ("" if r["verdict"] == "cannot tell" else f" {r['verdict']}")


def accuracy_table(summary: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """Subgroup x (metric per model, gain vs the reference per model): accuracy in percent,
    a regression error (``mse``, ``mae``) in the target's units."""
    acc = summary[summary["metric"] == metric]
    scale = 100.0 if metric == "accuracy" else 1.0
    short = "acc" if metric == "accuracy" else metric.upper()
    models = models_of(acc)
    rows = []
    for sub, d in acc.groupby("subgroup", sort=False):
        d = d.set_index("model")
        row = {"subgroup": sub, "n_test": f"{d['n_test'].iloc[0]:g}"}
        for m in models:
            row[f"{short} {LABELS.get(m, m)}"] = (
                _pct(d.loc[m, "mean"], d.loc[m, "sd"], scale=scale) if m in d.index else "–")
        for m in models:
            if m in d.index and d.loc[m, "verdict"] != "reference":
                row[f"gain {LABELS.get(m, m)}"] = _gain(d.loc[m], scale=scale)
        rows.append(row)
    return pd.DataFrame(rows)


def gap_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Attribute x model: demographic-parity and equalized-odds differences between the
    attribute's groups (percentage points, mean ± sd over runs) and the gain against the
    reference (negative: a smaller gap)."""
    gaps = summary[summary["subgroup"].astype(str).str.startswith("attribute ")]
    rows = []
    for (sub, model), d in gaps.groupby(["subgroup", "model"], sort=False):
        d = d.set_index("metric")
        row = {"attribute": sub.removeprefix("attribute "), "model": LABELS.get(model, model)}
        for k, label in (("dp_difference", "DP difference"),
                         ("eqodds_difference", "EqOdds difference")):
            if k in d.index:
                row[label] = _pct(d.loc[k, "mean"], d.loc[k, "sd"])
                row[f"gain {label}"] = ("–" if d.loc[k, "verdict"] == "reference"
                                        else _gain(d.loc[k]))
        rows.append(row)
    return pd.DataFrame(rows)


def regression_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Subgroup x model: MAE and R² (mean ± sd over runs)."""
    rows = []
    for (sub, model), d in summary.groupby(["subgroup", "model"], sort=False):
        d = d.set_index("metric")
        cell = {}
        for k in ("mae", "r2"):
            cell[k] = _pct(d.loc[k, "mean"], d.loc[k, "sd"], scale=1.0) if k in d.index else "–"
        rows.append({"subgroup": sub, "model": LABELS.get(model, model), "MAE": cell["mae"],
                     "R²": cell["r2"]})
    return pd.DataFrame(rows)


def secondary_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Subgroup x model: AUROC, balanced accuracy and calibration (ECE, Brier score) when
    present (mean ± sd, percent; Brier x 100)."""
    summary = summary[summary["metric"].isin(["auroc", "balanced_accuracy", "ece", "brier"])]
    wide = summary.pivot_table(index=["subgroup", "model"], columns="metric",
                               values=["mean", "sd"], sort=False, dropna=False)
    nan = float("nan")
    rows = []
    for (sub, model), r in wide.iterrows():    # sd is NaN with one run: shown without it
        rows.append({"subgroup": sub, "model": LABELS.get(model, model),
                     "AUROC": _pct(r.get(("mean", "auroc"), nan), r.get(("sd", "auroc"), nan)),
                     "balanced accuracy": _pct(r.get(("mean", "balanced_accuracy"), nan),
                                               r.get(("sd", "balanced_accuracy"), nan)),
                     **({"ECE": _pct(r.get(("mean", "ece"), nan), r.get(("sd", "ece"), nan)),
                         "Brier x 100": _pct(r.get(("mean", "brier"), nan),
                                             r.get(("sd", "brier"), nan))}
                        if ("mean", "ece") in r.index else {})})
    return pd.DataFrame(rows)


def guard_table(guard: pd.DataFrame) -> pd.DataFrame:
    """Per subgroup: which model the guard deployed in how many outer splits."""
    dep = guard[guard["metric"] == "deployed"]
    n = guard["outer_split"].nunique()
    rows = []
    for sub, d in dep.groupby("subgroup", sort=False):
        counts = d["model"].value_counts()
        rows.append({"subgroup": sub, "deployed (outer splits)": ", ".join(
            f"{LABELS.get(m, m)} {c}/{n}" for m, c in counts.items())})
    return pd.DataFrame(rows)


def _regression_report(summary: pd.DataFrame, title: str, guard: pd.DataFrame | None,
                       alpha: float, external: pd.DataFrame | None) -> str:
    parts = [f"## {title}",
             "Mean squared error per subgroup (target units²), mean ± sd over runs; gain = "
             "paired per-run difference against the reference (negative: lower error, "
             "\"helps\"), with its 95 % interval (corrected resampled t over outer splits; "
             "with one outer split a bootstrap over the subgroup's test rows) and a verdict "
             f"where Holm's adjustment over the subgroups of each model keeps p < {alpha}.",
             markdown_table(accuracy_table(summary, "mse")),
             "Mean absolute error (target units) and R², mean ± sd over runs.",
             markdown_table(regression_table(summary))]
    if guard is not None and len(guard):
        chosen = guard.loc[guard["metric"] == "reference", "model"].value_counts()
        parts += ["Guard (on the training part's cross-fitted guard predictions, squared "
                  "error): reference per outer split " + ", ".join(
                      f"{LABELS.get(m, m)} {c}" for m, c in chosen.items())
                  + "; a personalized model is deployed for a subgroup only where it has "
                  "lower error than the reference (one-sided paired test, Holm over "
                  "subgroups x candidates).", markdown_table(guard_table(guard))]
    if external is not None and len(external):
        parts += ["External validation (--test-data): mean squared error per subgroup on "
                  "all rows of the external file, bootstrap interval over its rows.",
                  markdown_table(accuracy_table(external, "mse"))]
    return "\n\n".join(parts) + "\n"


def markdown_report(summary: pd.DataFrame, title: str = "noharm personalization",
                    guard: pd.DataFrame | None = None, alpha: float = 0.05,
                    external: pd.DataFrame | None = None) -> str:
    """The study's tables as one Markdown document."""
    if "mse" in set(summary["metric"]):
        return _regression_report(summary, title, guard, alpha, external)
    parts = [f"## {title}",
             "Accuracy (%) per subgroup, mean ± sd over runs; gain = paired per-run "
             "difference against the reference, with its 95 % interval (corrected resampled "
             "t over outer splits; with one outer split a bootstrap over the subgroup's test "
             f"rows) and a verdict where Holm's adjustment over the subgroups of each model "
             f"keeps p < {alpha}.",
             markdown_table(accuracy_table(summary)),
             "AUROC, balanced accuracy and expected calibration error (ECE, 10 equal-width "
             "bins) in %, Brier score x 100 (lower ECE and Brier: better calibrated), mean ± "
             "sd over runs.",
             markdown_table(secondary_table(summary))]
    gaps = gap_table(summary)
    if len(gaps):
        parts += ["Fairness gaps across each group attribute on the test rows (percentage "
                  "points, between the attribute's best and worst group; mean ± sd over "
                  "runs): what each model does to them. Gain against the reference "
                  "(negative: a smaller gap), with an interval and verdict when there are "
                  "several outer splits.", markdown_table(gaps)]
    if guard is not None and len(guard):
        chosen = guard.loc[guard["metric"] == "reference", "model"].value_counts()
        parts += ["Guard (on the training part's cross-fitted guard predictions): reference "
                  "per outer split " + ", ".join(f"{LABELS.get(m, m)} {c}" for m, c in
                                                 chosen.items())
                  + "; a personalized model is deployed for a subgroup only where it beats the "
                  "reference (one-sided paired test, Holm over subgroups x candidates).",
                  markdown_table(guard_table(guard))]
    if external is not None and len(external):
        parts += ["External validation (--test-data): every run's models on all rows of the "
                  "external file; accuracy (%) per subgroup, gain against the reference with "
                  "a 95 % bootstrap interval over the external rows (runs averaged per row) "
                  f"and a verdict where Holm's adjustment keeps p < {alpha}.",
                  markdown_table(accuracy_table(external)),
                  "External AUROC and balanced accuracy (%), mean ± sd over runs.",
                  markdown_table(secondary_table(external))]
    return "\n\n".join(parts) + "\n"
