"""Fairness metrics for any number of groups (fairlearn-compatible names and definitions).

``sensitive_features`` is one label per row (any type: strings, numbers) or a DataFrame of
attributes, whose rows are joined into intersectional groups.  For a rate r (selection rate,
TPR, FPR) per group g, with the overall rate r_all on all rows:

* ``method="between_groups"``: difference max_g r_g - min_g r_g, ratio min_g r_g / max_g r_g;
* ``method="to_overall"``: difference max_g |r_g - r_all|, ratio
  min_g min(r_g / r_all, r_all / r_g).

Equalized odds takes the worse of the TPR and FPR gaps (the larger difference, the smaller
ratio); equal opportunity the TPR gap.  A group without positive (negative) labels has no
TPR (FPR): ``undefined="drop"`` (default) leaves it out of that gap; ``"zero"`` counts the
rate as 0, fairlearn's convention (scikit-learn's ``zero_division``), under which one tiny
group without positives makes the TPR gap the largest TPR.  ``pos_label`` names the positive label (required
when the labels are not 0/1, e.g. -1/1); ``sample_weight`` weights the rows.  Hard
predictions only: scores must be thresholded first.  These follow fairlearn's
``demographic_parity_difference`` etc. (fairlearn is the oracle of the tests); the signed
two-group forms with a privileged value stay in :mod:`noharm.fairness.metrics`.

Calibration per group: the expected calibration error (equal-width or equal-count bins)
and the Brier score.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from .._validation import check_choice, check_positive_int
from ..errors import ConfigError, GroupError, LengthMismatchError

METHODS = ("between_groups", "to_overall")


def _groups(sensitive_features: Any, n: int) -> np.ndarray:
    """Group label per row (intersections of a DataFrame's columns)."""
    if sensitive_features is None:
        raise GroupError("sensitive_features is required: one group label per row, or a "
                         "DataFrame of attributes.")
    sf = sensitive_features
    if isinstance(sf, pd.DataFrame):
        if sf.isna().any().any():
            raise GroupError("sensitive_features has missing values; give them a group.")
        cols = [sf[c].astype(str) for c in sf.columns]
        labels = (cols[0].str.cat(cols[1:], sep=" & ") if len(cols) > 1 else cols[0]).to_numpy()
    else:
        arr = np.asarray(sf)
        if arr.ndim == 2:
            return _groups(pd.DataFrame(arr), n)
        ser = pd.Series(arr)
        if ser.isna().any():
            raise GroupError("sensitive_features has missing values; give them a group.")
        labels = ser.astype(str).to_numpy()
    if len(labels) != n:
        raise LengthMismatchError(f"y has {n} rows but sensitive_features has {len(labels)}.")
    return labels


def _binary(values: np.ndarray, pos_label: Any, name: str) -> np.ndarray:
    """0/1 from labels: 0/1 (or booleans) as they are, others need ``pos_label``."""
    uniq = set(pd.unique(values).tolist())
    if pos_label is None:
        if not uniq <= {0, 1}:
            shown = sorted(map(str, uniq))[:6]
            raise ConfigError(f"{name} has values {shown}, not 0/1: say which one is positive "
                              "with pos_label= (e.g. pos_label=1 for -1/1 labels).")
        return values.astype(int)
    if len(uniq) > 2:
        raise ConfigError(f"{name} has {len(uniq)} values; these metrics need two (binary "
                          "labels / hard predictions).")
    return (values == pos_label).astype(int)


def _prepare(y_true, y_pred, sensitive_features, pos_label, sample_weight):
    yt = np.asarray(y_true).ravel()
    yp = np.asarray(y_pred).ravel()
    if yt.shape != yp.shape:
        raise LengthMismatchError(f"y_true has {len(yt)} rows but y_pred has {len(yp)}.")
    if np.issubdtype(yp.dtype, np.floating) and not np.isin(yp, (0.0, 1.0)).all() and \
            pos_label is None:
        raise ConfigError("y_pred holds scores, not hard predictions; threshold them first "
                          "(e.g. (p >= 0.5).astype(int)).")
    yt, yp = _binary(yt, pos_label, "y_true"), _binary(yp, pos_label, "y_pred")
    g = _groups(sensitive_features, len(yt))
    w = np.ones(len(yt)) if sample_weight is None else np.asarray(sample_weight, float).ravel()
    if len(w) != len(yt):
        raise LengthMismatchError(f"sample_weight has {len(w)} values for {len(yt)} rows.")
    if (w < 0).any() or not np.isfinite(w).all():
        raise ConfigError("sample_weight must be finite and >= 0.")
    return yt, yp, g, w


def _rate(pred: np.ndarray, w: np.ndarray, mask: np.ndarray) -> float:
    ws = w[mask].sum()
    return float((pred[mask] * w[mask]).sum() / ws) if ws > 0 else float("nan")


def group_rates(y_true, y_pred, *, sensitive_features, pos_label=None,
                sample_weight=None) -> pd.DataFrame:
    """Per group (and ``overall``): n, selection rate, TPR, FPR (weighted)."""
    yt, yp, g, w = _prepare(y_true, y_pred, sensitive_features, pos_label, sample_weight)
    rows = []
    for name, m in [*((v, g == v) for v in sorted(np.unique(g))),
                    ("overall", np.ones(len(g), bool))]:
        rows.append({"group": name, "n": int(m.sum()),
                     "selection_rate": _rate(yp, w, m),
                     "tpr": _rate(yp, w, m & (yt == 1)), "fpr": _rate(yp, w, m & (yt == 0))})
    return pd.DataFrame(rows).set_index("group")


def _gap(rates: pd.DataFrame, col: str, method: str, ratio: bool,
         undefined: str = "drop") -> float:
    check_choice(method, name="method", choices=METHODS)
    check_choice(undefined, name="undefined", choices=("drop", "zero"))
    per = rates.drop(index="overall")[col]
    per = per.dropna() if undefined == "drop" else per.fillna(0.0)
    if len(per) < 2:
        raise GroupError(f"{col} is defined for fewer than two groups; the gap needs two "
                         "(groups without positive/negative labels have no TPR/FPR).")
    overall = rates.loc["overall", col]
    if method == "between_groups":
        if ratio:
            hi = per.max()
            return float(per.min() / hi) if hi > 0 else float("nan")
        return float(per.max() - per.min())
    if ratio:
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.minimum(per / overall, overall / per)
        return float(np.nanmin(r)) if overall > 0 else float("nan")
    return float((per - overall).abs().max())


def _gap_metric(name: str, columns: tuple[str, ...], ratio: bool, doc: str) -> Callable:
    """A fairlearn-style metric: the worst gap (largest difference, smallest ratio) of the
    given rates between the groups."""
    def metric(y_true, y_pred, *, sensitive_features, method: str = "between_groups",
               pos_label=None, sample_weight=None, undefined: str = "drop") -> float:
        r = group_rates(y_true, y_pred, sensitive_features=sensitive_features,
                        pos_label=pos_label, sample_weight=sample_weight)
        gaps = [_gap(r, c, method, ratio, undefined) for c in columns]
        return min(gaps) if ratio else max(gaps)
    metric.__name__ = metric.__qualname__ = name
    metric.__doc__ = doc
    return metric


demographic_parity_difference = _gap_metric(
    "demographic_parity_difference", ("selection_rate",), False,
    "Largest gap in selection rate between groups (0 = parity).")
demographic_parity_ratio = _gap_metric(
    "demographic_parity_ratio", ("selection_rate",), True,
    "Smallest ratio of selection rates (1 = parity; < 0.8 fails the four-fifths rule).")
equal_opportunity_difference = _gap_metric(
    "equal_opportunity_difference", ("tpr",), False,
    "Largest gap in true-positive rate between groups.")
equal_opportunity_ratio = _gap_metric(
    "equal_opportunity_ratio", ("tpr",), True,
    "Smallest ratio of true-positive rates between groups.")
equalized_odds_difference = _gap_metric(
    "equalized_odds_difference", ("tpr", "fpr"), False,
    "The larger of the TPR and FPR gaps (fairlearn's ``agg=\"worst_case\"``).")
equalized_odds_ratio = _gap_metric(
    "equalized_odds_ratio", ("tpr", "fpr"), True,
    "The smaller of the TPR and FPR ratios.")


def group_table(y_true, y_pred, *, sensitive_features, metrics: Mapping[str, Callable],
                n_boot: int = 0, level: float = 0.95, random_state: int = 0) -> pd.DataFrame:
    """Any metrics per group and overall, in the spirit of fairlearn's MetricFrame.

    ``metrics`` maps a name to ``f(y_true, y_pred) -> float`` (scores or labels: passed as
    they are).  With ``n_boot > 0`` each cell gets a percentile interval from a bootstrap
    that resamples rows within each group (one resample serves every metric and group).
    Ratio-of-counts metrics on 0/1 labels (scikit-learn's accuracy, recall and precision,
    fairlearn's selection, true- and false-positive rates) are bootstrapped vectorised
    over the replicates; any other callable is called once per replicate and group.
    """
    yt, yp = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    if len(yt) != len(yp):
        raise LengthMismatchError(f"y_true has {len(yt)} rows but y_pred has {len(yp)}.")
    g = _groups(sensitive_features, len(yt))
    names = [*sorted(np.unique(g)), "overall"]
    masks = {v: g == v for v in names[:-1]}
    masks["overall"] = np.ones(len(g), bool)

    def cells(idx_by_group: dict[str, np.ndarray]) -> dict[tuple[str, str], float]:
        out = {}
        for v, idx in idx_by_group.items():
            for k, fn in metrics.items():
                try:
                    out[(v, k)] = float(fn(yt[idx], yp[idx]))
                except ValueError:              # e.g. AUROC of a one-class group
                    out[(v, k)] = float("nan")
        return out

    base = {v: np.flatnonzero(m) for v, m in masks.items()}
    est = cells(base)
    rows = [{"group": v, "n": len(base[v]), **{k: est[(v, k)] for k in metrics}}
            for v in names]
    table = pd.DataFrame(rows).set_index("group")
    if n_boot > 0:
        rng = np.random.default_rng(random_state)
        counts = {k: _COUNT_METRICS.get(fn) for k, fn in metrics.items()}
        binary = np.isin(yt, (0, 1)).all() and np.isin(yp, (0, 1)).all()
        if binary and all(c is not None for c in counts.values()):
            reps = _count_bootstrap(yt.astype(bool), yp.astype(bool), base, names, counts,
                                    n_boot, rng)
        else:
            reps = []
            for _ in range(n_boot):
                idx = {v: rng.choice(base[v], len(base[v])) for v in names[:-1]}
                idx["overall"] = np.concatenate([idx[v] for v in names[:-1]])
                reps.append(cells(idx))
            reps = {key: np.array([r[key] for r in reps]) for key in reps[0]}
        a = (1 - level) / 2
        for k in metrics:
            for v in names:
                vals = reps[(v, k)]
                vals = vals[~np.isnan(vals)]
                lo, hi = (np.quantile(vals, [a, 1 - a]) if len(vals) else
                          (float("nan"), float("nan")))
                table.loc[v, f"{k}_ci_low"], table.loc[v, f"{k}_ci_high"] = lo, hi
    return table


def _count_pairs() -> dict[Callable, Callable]:
    """Metrics that are a ratio of counts, as ``f(yt, yp) -> (numerator, denominator)``
    over boolean (B, n) arrays: their bootstrap needs no per-replicate Python call."""
    from sklearn import metrics as skm
    pairs = {
        skm.accuracy_score: lambda t, p: ((t == p).sum(-1), np.full(t.shape[:-1], t.shape[-1])),
        skm.recall_score: lambda t, p: ((t & p).sum(-1), t.sum(-1)),
        skm.precision_score: lambda t, p: ((t & p).sum(-1), p.sum(-1)),
    }
    try:
        import fairlearn.metrics as fm
        pairs.update({
            fm.selection_rate: lambda t, p: (p.sum(-1), np.full(t.shape[:-1], t.shape[-1])),
            fm.true_positive_rate: lambda t, p: ((t & p).sum(-1), t.sum(-1)),
            fm.false_positive_rate: lambda t, p: ((~t & p).sum(-1), (~t).sum(-1)),
        })
    except ImportError:  # pragma: no cover - fairlearn is a dependency
        pass
    return pairs


_COUNT_METRICS = _count_pairs()


def _count_bootstrap(yt: np.ndarray, yp: np.ndarray, base: dict, names: list[str],
                     counts: dict, n_boot: int, rng: np.random.Generator,
                     chunk: int = 50) -> dict:
    """Bootstrap of ratio-of-counts metrics, vectorised over replicates (rows resampled
    within each group; ``overall`` pools each replicate's group resamples)."""
    out = {(v, k): [] for v in names for k in counts}
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        totals = {k: [0, 0] for k in counts}
        for v in names[:-1]:
            rows = base[v]
            idx = rows[rng.integers(0, len(rows), size=(b, len(rows)))]
            t, p = yt[idx], yp[idx]
            for k, f in counts.items():
                num, den = f(t, p)
                with np.errstate(divide="ignore", invalid="ignore"):
                    out[(v, k)].append(np.where(den > 0, num / np.maximum(den, 1), np.nan))
                totals[k][0] = totals[k][0] + num
                totals[k][1] = totals[k][1] + den
        for k, (num, den) in totals.items():
            out[("overall", k)].append(np.where(den > 0, num / np.maximum(den, 1), np.nan))
    return {key: np.concatenate(v) for key, v in out.items()}


def gaps_by_run(y_true: np.ndarray, pred_runs: np.ndarray, groups: np.ndarray
                ) -> dict[str, np.ndarray]:
    """Between-groups demographic-parity and equalized-odds differences of every run at
    once (``pred_runs`` (R, n) hard 0/1 predictions): ``{"dp_difference": (R,),
    "eqodds_difference": (R,)}``; a group without positive (negative) labels has no TPR
    (FPR) and is left out of that gap."""
    y = np.asarray(y_true).astype(int)
    pred = np.atleast_2d(np.asarray(pred_runs, dtype=float))
    g = np.asarray(groups).astype(str)
    sel, tpr, fpr = [], [], []
    for v in np.unique(g):
        m = g == v
        sel.append(pred[:, m].mean(1))
        if (m & (y == 1)).any():
            tpr.append(pred[:, m & (y == 1)].mean(1))
        if (m & (y == 0)).any():
            fpr.append(pred[:, m & (y == 0)].mean(1))

    def gap(rates: list[np.ndarray]) -> np.ndarray:
        if len(rates) < 2:
            return np.full(pred.shape[0], np.nan)
        r = np.vstack(rates)
        return r.max(0) - r.min(0)
    return {"dp_difference": gap(sel),
            "eqodds_difference": np.fmax(gap(tpr), gap(fpr))}


def expected_calibration_error(y_true, y_prob, *, n_bins: int = 10,
                               strategy: str = "uniform") -> float:
    """ECE: the row-weighted mean |mean predicted probability - observed rate| over bins
    (``uniform``: equal-width bins on [0, 1]; ``quantile``: equal-count, "adaptive")."""
    check_choice(strategy, name="strategy", choices=("uniform", "quantile"))
    y = np.asarray(y_true, dtype=float).ravel()
    p = np.asarray(y_prob, dtype=float).ravel()
    if len(y) != len(p):
        raise LengthMismatchError(f"y_true has {len(y)} rows but y_prob has {len(p)}.")
    if len(p) == 0:
        return float("nan")
    if ((p < 0) | (p > 1)).any() or not np.isfinite(p).all():
        raise ConfigError("y_prob must be probabilities in [0, 1].")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ConfigError("y_true must be 0/1 for calibration.")
    if strategy == "uniform":
        edges = np.linspace(0, 1, n_bins + 1)
    else:
        edges = np.unique(np.quantile(p, np.linspace(0, 1, n_bins + 1)))
    b = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, len(edges) - 2)
    ece = 0.0
    for k in np.unique(b):
        m = b == k
        ece += m.mean() * abs(p[m].mean() - y[m].mean())
    return float(ece)


def brier_score(y_true, y_prob) -> float:
    """Mean squared difference between probability and outcome (0 is perfect)."""
    y = np.asarray(y_true, dtype=float).ravel()
    p = np.asarray(y_prob, dtype=float).ravel()
    return float(np.mean((p - y) ** 2))


def reliability_table(y_true, y_prob, *, sensitive_features=None, n_bins: int = 10
                      ) -> pd.DataFrame:
    """The points of a reliability diagram, overall (group ``all``) and per group: for each
    of ``n_bins`` equal-width bins of the predicted probability, the rows ``n``, the mean
    predicted probability and the observed rate of Y = 1 (empty bins are left out)."""
    y = np.asarray(y_true, dtype=float).ravel()
    p = np.asarray(y_prob, dtype=float).ravel()
    if len(y) != len(p):
        raise LengthMismatchError(f"y_true has {len(y)} rows but y_prob has {len(p)}.")
    if ((p < 0) | (p > 1)).any() or not np.isfinite(p).all():
        raise ConfigError("y_prob must be probabilities in [0, 1].")
    check_positive_int(n_bins, name="n_bins")
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    parts = [("all", np.ones(len(y), bool))]
    if sensitive_features is not None:
        g = _groups(sensitive_features, len(y))
        parts += [(str(v), g == v) for v in np.unique(g)]
    rows = []
    for name, mask in parts:
        n = np.bincount(bins[mask], minlength=n_bins)
        sp = np.bincount(bins[mask], weights=p[mask], minlength=n_bins)
        sy = np.bincount(bins[mask], weights=y[mask], minlength=n_bins)
        for b in np.flatnonzero(n):
            rows.append({"group": name, "bin": int(b), "n": int(n[b]),
                         "mean_predicted": sp[b] / n[b], "observed_rate": sy[b] / n[b]})
    return pd.DataFrame(rows, columns=["group", "bin", "n", "mean_predicted",
                                       "observed_rate"])


def calibration_by_group(y_true, y_prob, *, sensitive_features, n_bins: int = 10,
                         n_boot: int = 0, random_state: int = 0) -> pd.DataFrame:
    """Per group and overall: ECE (equal-width bins), adaptive ECE (equal-count bins) and
    the Brier score, optionally with bootstrap intervals."""
    return group_table(
        y_true, y_prob, sensitive_features=sensitive_features,
        metrics={"ece": lambda y, p: expected_calibration_error(y, p, n_bins=n_bins),
                 "ece_adaptive": lambda y, p: expected_calibration_error(
                     y, p, n_bins=n_bins, strategy="quantile"),
                 "brier": brier_score},
        n_boot=n_boot, random_state=random_state)


__all__ = ["METHODS", "brier_score", "gaps_by_run", "calibration_by_group", "demographic_parity_difference",
           "demographic_parity_ratio", "equal_opportunity_difference",
           "equal_opportunity_ratio", "equalized_odds_difference", "equalized_odds_ratio",
           "expected_calibration_error", "group_rates", "group_table"]
