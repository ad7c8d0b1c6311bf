"""Per-run, per-subgroup classification metrics, vectorised over runs.

fairlearn's ``MetricFrame`` costs about 30 ms per (run, group) cell here, more
than training the models of a Heart protocol chunk, so the protocol computes
accuracy, balanced accuracy and AUROC (rank formula, ties averaged) for all
runs at once with numpy; the tests check every number against ``MetricFrame``
with scikit-learn's metrics.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata

METRIC_NAMES = ("accuracy", "auroc", "balanced_accuracy", "brier", "ece")
ECE_BINS = 10
REGRESSION_METRICS = ("mse", "mae", "r2")


def regression_metrics(y: np.ndarray, pred: np.ndarray, groups: np.ndarray) -> pd.DataFrame:
    """Long frame (run, group, n, metric, value) of MSE, MAE and R² (1 - SSE/SST within
    the group; NaN for a group of one value) for every run and subgroup plus ``all``."""
    y = np.asarray(y, dtype=np.float64)
    pred = np.atleast_2d(np.asarray(pred, dtype=np.float64))
    groups = np.asarray(groups).astype(str)
    R = pred.shape[0]
    frames = []
    for g in [*sorted(np.unique(groups)), "all"]:
        rows = np.ones(len(y), bool) if g == "all" else groups == g
        err = pred[:, rows] - y[rows]
        sst = float(((y[rows] - y[rows].mean()) ** 2).sum())
        mse = (err ** 2).mean(1)
        vals = {"mse": mse, "mae": np.abs(err).mean(1),
                "r2": 1 - (err ** 2).sum(1) / sst if sst > 0 else np.full(R, np.nan)}
        for name, v in vals.items():
            frames.append(pd.DataFrame({"run": np.arange(R), "group": g,
                                        "n": int(rows.sum()), "metric": name, "value": v}))
    return pd.concat(frames, ignore_index=True)


def _metrics(y: np.ndarray, proba: np.ndarray) -> dict[str, np.ndarray]:
    """Metrics of every run (rows of ``proba``) on labels ``y``; NaN where undefined."""
    pred = proba >= 0.5
    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    acc = (pred == pos).mean(1)
    calib = {"brier": ((proba - pos) ** 2).mean(1), "ece": _ece(pos, proba)}
    if n_pos == 0 or n_neg == 0:
        nan = np.full(len(proba), np.nan)
        return {"accuracy": acc, "auroc": nan, "balanced_accuracy": nan, **calib}
    tpr = pred[:, pos].mean(1)
    tnr = (~pred[:, ~pos]).mean(1)
    ranks = rankdata(proba, axis=1)
    auroc = (ranks[:, pos].sum(1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return {"accuracy": acc, "auroc": auroc, "balanced_accuracy": (tpr + tnr) / 2, **calib}


def _ece(pos: np.ndarray, proba: np.ndarray, n_bins: int = ECE_BINS) -> np.ndarray:
    """Expected calibration error of every run (equal-width bins on [0, 1], as
    :func:`noharm.fairness.groupwise.expected_calibration_error`)."""
    n = proba.shape[1]
    if n == 0:
        return np.full(len(proba), np.nan)
    edges = np.linspace(0, 1, n_bins + 1)
    b = np.clip(np.searchsorted(edges, proba, side="right") - 1, 0, n_bins - 1)
    out = np.zeros(len(proba))
    for k in range(n_bins):
        m = b == k
        cnt = m.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            gap = np.abs((proba * m).sum(1) - (pos[None, :] * m).sum(1)) / np.maximum(cnt, 1)
        out += np.where(cnt > 0, cnt / n * gap, 0.0)
    return out


def group_metrics(y: np.ndarray, proba: np.ndarray, groups: np.ndarray) -> pd.DataFrame:
    """Long frame (run, group, n, metric, value): every subgroup plus ``all``.

    Parameters
    ----------
    y : (n,) true 0/1 labels.
    proba : (n_runs, n) P(y = 1) of every run (threshold 0.5 for the labels).
    groups : (n,) subgroup labels.
    """
    y = np.asarray(y)
    proba = np.atleast_2d(np.asarray(proba, dtype=np.float64))
    groups = np.asarray(groups).astype(str)
    R = proba.shape[0]
    frames = []
    for g in [*sorted(np.unique(groups)), "all"]:
        rows = np.ones(len(y), bool) if g == "all" else groups == g
        for name, values in _metrics(y[rows], proba[:, rows]).items():
            frames.append(pd.DataFrame({"run": np.arange(R), "group": g, "n": int(rows.sum()),
                                        "metric": name, "value": values}))
    return pd.concat(frames, ignore_index=True)
