"""Markdown tables of a personalization summary (the DESIGN §9 ``summary.csv``: one row
per subgroup x model x metric, gains against the reference)."""
from __future__ import annotations

import math
import re

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


def _full_regression_report(summary: pd.DataFrame, title: str, guard: pd.DataFrame | None,
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


def _full_report(summary: pd.DataFrame, title: str, guard: pd.DataFrame | None,
                 alpha: float, external: pd.DataFrame | None) -> str:
    """Every table of a classification study (``markdown_report(..., full=True)``)."""
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


# -- the short report: the guard's certificate and one compact table -------------------

#: the widest line of the short report (characters)
WIDTH = 100

#: short model names for the compact tables (the ``--models`` names, one abbreviated)
SHORT = {"generic": "generic", "decoupled": "decoupled", "conditional-bias": "cond-bias",
         "logreg": "logreg", "hgb": "hgb", "linreg": "linreg", "reference": "reference",
         "guarded": "guarded"}

#: the guard's numbers per outer split and subgroup (results.csv metrics ``guard_<key>``)
GUARD_STATS = ("effect", "ci_low", "ci_high", "p_value", "p_holm", "detectable")

_NAN = float("nan")


def _isnan(v) -> bool:
    try:
        return v is None or math.isnan(float(v))
    except (TypeError, ValueError):
        return False


def _num(v: float, scale: float, signed: bool = False) -> str:
    """``v`` in points (``scale`` 100, one decimal) or in the metric's units (``scale`` 1,
    three significant digits); "–" when missing."""
    if _isnan(v):
        return "–"
    v = scale * float(v)
    if scale == 100:
        return f"{v:+.1f}" if signed else f"{v:.1f}"
    return f"{v:+.3g}" if signed else f"{v:.3g}"


def _interval(v: float, low: float, high: float, scale: float) -> str:
    """``v [low, high]`` (signed), or ``v`` alone without an interval."""
    head = _num(v, scale, signed=True)
    if _isnan(v) or _isnan(low) or _isnan(high):
        return head
    return f"{head} [{_num(low, scale, True)}, {_num(high, scale, True)}]"


def _p(p: float) -> str:
    if _isnan(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.2g}"


def text_table(df: pd.DataFrame, left: tuple[str, ...] = (), sep: str = "  ") -> str:
    """``df`` as an aligned plain-text table in a Markdown code block: the first column
    and the ``left`` columns left-aligned, the others right-aligned, ``sep`` between."""
    cols = [str(c) for c in df.columns]
    cells = [[str(v) for v in row] for row in df.itertuples(index=False)]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(cols)]

    def line(vals: list[str]) -> str:
        out = [v.ljust(w) if i == 0 or cols[i] in left else v.rjust(w)
               for i, (v, w) in enumerate(zip(vals, widths))]
        return sep.join(out).rstrip()

    return "\n".join(["```", line(cols), *(line(r) for r in cells), "```"])


def _wrap(text: str) -> str:
    import textwrap
    return textwrap.fill(text, WIDTH, break_on_hyphens=False)


def certificate_records(guard: pd.DataFrame) -> pd.DataFrame:
    """The guard's certificate from its results.csv rows (role ``guard``): one row per
    outer split x subgroup with ``outer_split``, ``subgroup``, ``n`` (guard rows),
    ``reference``, ``deployed``, ``versus`` (the generic model of the binding comparison,
    metric ``versus``) and :data:`GUARD_STATS` (NaN where absent)."""
    cols = ["outer_split", "subgroup", "n", "reference", "deployed", "versus", *GUARD_STATS]
    if guard is None or guard.empty:
        return pd.DataFrame(columns=cols)
    if "role" in guard:
        guard = guard[guard["role"] == "guard"]
    refs = guard[guard["metric"] == "reference"].groupby("outer_split")["model"].first()
    dep = guard[guard["metric"] == "deployed"]
    rows = []
    for r in dep.itertuples(index=False):
        rows.append({"outer_split": r.outer_split, "subgroup": str(r.subgroup),
                     "n": r.n if "n" in dep else _NAN,
                     "reference": refs.get(r.outer_split, _NAN), "deployed": r.model})
    out = pd.DataFrame(rows, columns=cols[:5])
    vs = guard[guard["metric"] == "versus"]
    vs = vs.assign(subgroup=vs["subgroup"].astype(str)).groupby(
        ["outer_split", "subgroup"], sort=False)["model"].first().rename("versus")
    out = out.merge(vs.reset_index(), on=["outer_split", "subgroup"], how="left")
    stats = guard[guard["metric"].isin([f"guard_{k}" for k in GUARD_STATS])]
    if len(stats):
        wide = (stats.assign(subgroup=stats["subgroup"].astype(str))
                .groupby(["outer_split", "subgroup", "metric"], sort=False)["value"].first()
                .unstack("metric"))
        wide.columns = [c.removeprefix("guard_") for c in wide.columns]
        out = out.merge(wide.reset_index(), on=["outer_split", "subgroup"], how="left")
    for k in GUARD_STATS:
        if k not in out:
            out[k] = _NAN
    return out[cols].reset_index(drop=True)


def _deployed_label(model: str, reference) -> str:
    return "reference" if model == reference else SHORT.get(model, model)


def _deployed_counts(d: pd.DataFrame) -> str:
    """``decoupled`` (one outer split) or ``decoupled 4/5``: the personalized models the
    guard deployed and in how many outer splits (the reference in the others), or
    ``reference 5/5``."""
    n = len(d)
    labels = [_deployed_label(m, r) for m, r in zip(d["deployed"], d["reference"])]
    if n == 1:
        return labels[0]
    counts = pd.Series(labels).value_counts(sort=False)
    chosen = counts.drop("reference", errors="ignore").sort_values(ascending=False,
                                                                    kind="stable")
    if chosen.empty:
        chosen = counts
    return ", ".join(f"{m} {c}/{n}" for m, c in chosen.items())


def _median_split(d: pd.DataFrame) -> pd.Series:
    """The row of the outer split with the median effect (the lower one of an even
    count; splits without an effect last)."""
    order = d.sort_values(["effect", "outer_split"], na_position="last", kind="stable")
    k = int(order["effect"].notna().sum())
    return order.iloc[(k - 1) // 2 if k else 0]


def _gain_row(summary: pd.DataFrame | None, subgroup: str, metric: str,
              model: str = "guarded") -> pd.Series | None:
    if summary is None or summary.empty:
        return None
    d = summary[(summary["model"] == model) & (summary["metric"] == metric)
                & (summary["subgroup"].astype(str) == str(subgroup))]
    return d.iloc[0] if len(d) else None


def certificate_table(guard: pd.DataFrame, summary: pd.DataFrame | None = None,
                      metric: str = "accuracy") -> pd.DataFrame:
    """Per subgroup (and ``all``): guard n, deployed model, the guard's effect with its
    95 % interval, Holm-adjusted p and smallest detectable effect (MDE), and the guarded
    model's test gain over the reference in ``metric`` with its interval and verdict
    (from ``summary``).

    Accuracy and the classification guard's effect are in points (x 100); a regression
    error and its effect in the target's units.  With several outer splits, ``deployed``
    counts the splits and the guard's numbers are those of the split with the median
    effect; the test gain is the summary's (every split)."""
    rec = certificate_records(guard)
    scale = 100.0 if metric == "accuracy" else 1.0
    unit = "acc." if metric == "accuracy" else metric.upper()
    rows = []
    for sub, d in rec.groupby("subgroup", sort=False):
        r = _median_split(d)
        g = _gain_row(summary, sub, metric)
        rows.append({"subgroup": sub, "n": "–" if _isnan(r["n"]) else f"{r['n']:.0f}",
                     "deployed": _deployed_counts(d),
                     "effect [95 % CI]": _interval(r["effect"], r["ci_low"], r["ci_high"],
                                                   scale),
                     "Holm p": _p(r["p_holm"]), "MDE": _num(r["detectable"], scale),
                     f"{unit} gain [95 % CI]": "–" if g is None else _interval(
                         g["gain"], g["gain_ci_low"], g["gain_ci_high"], scale),
                     "verdict": "–" if g is None else str(g["verdict"])})
    g = _gain_row(summary, "all", metric)
    if rows and g is not None:
        n = rec.groupby("outer_split")["n"].sum(min_count=1).median()
        rows.append({"subgroup": "all", "n": "–" if _isnan(n) else f"{n:.0f}",
                     "deployed": "", "effect [95 % CI]": "", "Holm p": "", "MDE": "",
                     f"{unit} gain [95 % CI]": _interval(g["gain"], g["gain_ci_low"],
                                                         g["gain_ci_high"], scale),
                     "verdict": str(g["verdict"])})
    return pd.DataFrame(rows)


def compact_table(summary: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """Per subgroup: n_test and each model's mean ``metric`` over runs (accuracy in %,
    an error in the target's units), one column per model, short headers."""
    d = summary[summary["metric"] == metric]
    scale = 100.0 if metric == "accuracy" else 1.0
    models = models_of(d)
    rows = []
    for sub, g in d.groupby("subgroup", sort=False):
        g = g.drop_duplicates("model").set_index("model")
        n = g["n_test"].iloc[0]
        row = {"subgroup": sub, "n_test": "–" if _isnan(n) else f"{n:g}"}
        for m in models:
            row[SHORT.get(m, m)] = _num(g.loc[m, "mean"], scale) if m in g.index else "–"
        rows.append(row)
    return pd.DataFrame(rows)


def _split_gains(results: pd.DataFrame | None, metric: str) -> dict[tuple, float]:
    """Per (outer split, subgroup): the guarded model's mean paired per-run difference to
    the reference on the test rows (results.csv role ``test``)."""
    if results is None or results.empty or "role" not in results:
        return {}
    t = results[(results["role"] == "test") & (results["metric"] == metric)]
    keys = ["outer_split", "seed", "fold", "subgroup"]
    g = t[t["model"] == "guarded"][keys + ["value"]]
    r = t[t["model"] == "reference"][keys + ["value"]]
    if g.empty or r.empty:
        return {}
    m = g.merge(r, on=keys, suffixes=("", "_ref"))
    m["diff"] = m["value"] - m["value_ref"]
    m["subgroup"] = m["subgroup"].astype(str)
    return m.groupby(["outer_split", "subgroup"])["diff"].mean().to_dict()


def certificate_split_table(guard: pd.DataFrame, summary: pd.DataFrame | None = None,
                            results: pd.DataFrame | None = None,
                            metric: str = "accuracy") -> pd.DataFrame:
    """The guard's certificate of every outer split (the HTML report): per subgroup and
    split the guard n, reference, deployed model, the generic model the binding test was
    against, effect with its 95 % interval, one-sided p, Holm p and smallest detectable
    effect, and the guarded model's test gain over the
    reference in that split (``results``); with one outer split the summary's gain with
    its interval and verdict, with several one more row per subgroup (``all splits``:
    deployments counted, the summary's gain over every split)."""
    rec = certificate_records(guard)
    scale = 100.0 if metric == "accuracy" else 1.0
    x = " x 100" if scale == 100 else ""
    gain_col = ("test gain, points" if metric == "accuracy"
                else f"test {metric.upper()} gain")
    splits = rec["outer_split"].nunique()
    per_split = _split_gains(results, metric)
    subgroups = list(dict.fromkeys(rec["subgroup"]))
    if summary is not None and (summary["subgroup"].astype(str) == "all").any():
        subgroups.append("all")
    rows = []
    for sub in subgroups:
        d = rec[rec["subgroup"] == sub].sort_values("outer_split", kind="stable")
        g = _gain_row(summary, sub, metric)
        pooled = ("–" if g is None else _interval(g["gain"], g["gain_ci_low"],
                                                  g["gain_ci_high"], scale))
        verdict = "–" if g is None else str(g["verdict"])
        for r in d.itertuples(index=False):
            one = splits == 1
            rows.append({"subgroup": sub, "split": f"{r.outer_split}",
                         "guard n": "–" if _isnan(r.n) else f"{r.n:.0f}",
                         "reference": SHORT.get(r.reference, r.reference),
                         "deployed": _deployed_label(r.deployed, r.reference),
                         "vs": "–" if _isnan(r.versus) else
                         SHORT.get(r.versus, r.versus),
                         f"effect{x} [95 % CI]": _interval(r.effect, r.ci_low, r.ci_high,
                                                           scale),
                         "p": _p(r.p_value), "Holm p": _p(r.p_holm),
                         f"MDE{x}": _num(r.detectable, scale),
                         gain_col: pooled if one else _num(
                             per_split.get((r.outer_split, sub), _NAN), scale, signed=True),
                         "verdict": verdict if one else ""})
        if (splits > 1 or d.empty) and g is not None:
            rows.append({"subgroup": sub, "split": "all splits" if splits > 1 else "",
                         "guard n": "", "reference": "",
                         "deployed": _deployed_counts(d) if len(d) else "",
                         "vs": "",
                         f"effect{x} [95 % CI]": "", "p": "", "Holm p": "", f"MDE{x}": "",
                         gain_col: pooled, "verdict": verdict})
    return pd.DataFrame(rows)


#: the fairness gaps of results role ``fairness`` (points)
GAP_METRICS = {"dp_difference": "demographic parity difference",
               "eqodds_difference": "equalized odds difference"}


def gap_change_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per group attribute and gap metric: each model's mean gap between the attribute's
    groups (points, mean over runs; one column per model) and the guarded model's change
    against the reference (negative: a smaller gap) with its 95 % interval and verdict
    (an interval with several outer splits only)."""
    gaps = summary[summary["subgroup"].astype(str).str.startswith("attribute ")]
    models = models_of(gaps)
    rows = []
    for (sub, metric), d in gaps.groupby(["subgroup", "metric"], sort=False):
        d = d.drop_duplicates("model").set_index("model")
        row = {"attribute": str(sub).removeprefix("attribute "),
               "gap": GAP_METRICS.get(metric, metric)}
        for m in models:
            row[SHORT.get(m, m)] = _num(d.loc[m, "mean"], 100) if m in d.index else "–"
        if "guarded" in d.index:
            g = d.loc["guarded"]
            row["guarded − reference [95 % CI]"] = _interval(
                g["gain"], g["gain_ci_low"], g["gain_ci_high"], 100)
            row["verdict"] = str(g["verdict"])
        rows.append(row)
    return pd.DataFrame(rows)


def _certificate_part(guard: pd.DataFrame | None, summary: pd.DataFrame, metric: str,
                      alpha: float) -> list[str]:
    rec = certificate_records(guard)
    if rec.empty:
        return []
    refs = rec.drop_duplicates("outer_split")["reference"].value_counts()
    n = rec["outer_split"].nunique()
    ref = ", ".join(LABELS.get(m, m) + (f" {c}/{n}" if n > 1 else "")
                    for m, c in refs.items())
    if metric == "accuracy":
        effect, gain = "guard loss x 100", "accuracy, points"
    else:
        effect, gain = "squared error", f"{metric.upper()} (< 0: helps)"
    several = ("; k/n: deployed in k outer splits, the reference in the others; guard "
               "numbers of the median-effect split" if n > 1 else "")
    return [_wrap(f"Guard certificate (reference {ref}; n = guard rows; effect = reference "
                  f"minus candidate {effect}, > 0 helps, the best candidate's where the "
                  f"reference is kept; deployed where Holm p < {alpha}; MDE = smallest "
                  f"detectable effect; gain = guarded minus reference test {gain}{several}):"),
            _fitted(certificate_table(guard, summary, metric), left=("deployed", "verdict"))]


def _fitted(df: pd.DataFrame, left: tuple[str, ...] = ()) -> str:
    """:func:`text_table` no wider than :data:`WIDTH` where it can be: if a line would be
    wider, intervals are written ``[low,high]``, then one space separates the columns."""
    tight = df.apply(lambda c: c.map(lambda v: re.sub(r"\[(\S*), (\S*)\]", r"[\1,\2]", v)
                                     if isinstance(v, str) else v))
    for table, sep in ((df, "  "), (tight, "  "), (tight, " ")):
        text = text_table(table, left, sep)
        if max(map(len, text.splitlines())) <= WIDTH:
            break
    return text


def _where_line(output) -> str:
    if output is not None:
        return f"Full tables: {output}/summary.csv, results.csv (HTML: noharm report {output})."
    return ("Full tables: summary.csv and results.csv in the --output directory (without "
            "--output none are kept).")


def _short_report(summary: pd.DataFrame, title: str, guard: pd.DataFrame | None,
                  alpha: float, external: pd.DataFrame | None, metric: str,
                  output) -> str:
    what = ("Accuracy (%)" if metric == "accuracy"
            else f"{metric.upper()} (target units{'²' if metric == 'mse' else ''})")
    parts = [f"## {title}", *_certificate_part(guard, summary, metric, alpha),
             f"{what} on the test rows, mean over runs:",
             text_table(compact_table(summary, metric))]
    if external is not None and len(external) and (external["metric"] == metric).any():
        parts += [f"External validation (--test-data): {what[0].lower() + what[1:]} on the "
                  "external rows, mean over runs:", text_table(compact_table(external, metric))]
    parts.append(_where_line(output))
    return "\n\n".join(parts) + "\n"


def _regression_report(summary: pd.DataFrame, title: str, guard: pd.DataFrame | None,
                       alpha: float, external: pd.DataFrame | None, full: bool = False,
                       output=None) -> str:
    if full:
        return _full_regression_report(summary, title, guard, alpha, external)
    return _short_report(summary, title, guard, alpha, external, "mse", output)


def markdown_report(summary: pd.DataFrame, title: str = "noharm personalization",
                    guard: pd.DataFrame | None = None, alpha: float = 0.05,
                    external: pd.DataFrame | None = None, full: bool = False,
                    output=None) -> str:
    """The study's report as Markdown, printed and saved as ``summary.md``.

    Short (default; every line at most :data:`WIDTH` characters for the usual subgroup
    names): the title, the guard's certificate (:func:`certificate_table`), each model's
    mean accuracy (MSE for a regression) per subgroup (:func:`compact_table`), the same on
    the external file if any, and where the full tables are (``output``: the output
    directory, when known).  ``full=True``: every table (accuracy with sd and gains,
    AUROC/calibration, fairness gaps, guard deployments, external validation)."""
    if "mse" in set(summary["metric"]):
        return _regression_report(summary, title, guard, alpha, external, full, output)
    if full:
        return _full_report(summary, title, guard, alpha, external)
    return _short_report(summary, title, guard, alpha, external, "accuracy", output)
