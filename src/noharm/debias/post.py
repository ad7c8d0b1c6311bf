"""Post-processing: reject option classification (vectorised) and equalized-odds
post-processing (fairlearn's ThresholdOptimizer)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from .._validation import check_choice
from ..errors import GroupError
from ..fairness.metrics import check_protected

ROC_METRICS = ("spd", "aod", "eod")


@dataclass
class RejectOption:
    """Reject option classification (Kamiran, Karim & Zhang, 2012).

    Rows whose score lies in the critical region ``theta - margin < p <= theta + margin``
    get the favourable label when unprivileged (A = 0) and the unfavourable one when
    privileged (A = 1); elsewhere the label is ``p > theta``.

    ``fit`` evaluates the whole grid at once (every threshold x margin, by sorted counts)
    and keeps the pair with the highest balanced accuracy whose
    bias lies in ``[metric_lb, metric_ub]`` (first in grid order on ties); when none does,
    the pair with the smallest signed bias, and ``constraint_met_`` is False.  The grid
    and the selection rule are those of AIF360's ``RejectOptionClassification`` (thresholds
    ``linspace(low, high, num_class_thresh)``, margins ``linspace(0, min(t, 1 - t),
    num_roc_margin)``), so both choose the same pair.

    **Any number of groups**: give ``privileged`` (one label or a list) and any group
    labels as ``protected``; in the critical region the privileged groups get the
    unfavourable label and every other group the favourable one, and the constraint is on
    the worst pair: the largest gap between any two groups (selection rate for ``spd``,
    TPR for ``eod``, the mean of the TPR and FPR gaps for ``aod``) must be at most
    ``metric_ub`` (``bias_`` is that unsigned gap; when no pair meets it, the smallest
    gap is kept and ``constraint_met_`` is False).
    """

    metric: str = "spd"
    low_class_thresh: float = 0.01
    high_class_thresh: float = 0.99
    num_class_thresh: int = 100
    num_roc_margin: int = 50
    metric_lb: float = -0.05
    metric_ub: float = 0.05
    privileged: Any = None

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        thetas = np.linspace(self.low_class_thresh, self.high_class_thresh,
                             self.num_class_thresh)
        th = np.repeat(thetas, self.num_roc_margin)
        frac = np.tile(np.linspace(0.0, 1.0, self.num_roc_margin), self.num_class_thresh)
        return th, frac * np.minimum(th, 1.0 - th)

    @staticmethod
    def _labels(p: np.ndarray, a: np.ndarray, th: np.ndarray, m: np.ndarray) -> np.ndarray:
        pred = p[None, :] > th[:, None]
        crit = (p[None, :] <= (th + m)[:, None]) & (p[None, :] > (th - m)[:, None])
        return np.where(crit, (a == 0)[None, :], pred)

    def fit(self, y_true, proba, protected) -> "RejectOption":
        check_choice(self.metric, name="metric", choices=ROC_METRICS)
        y = np.asarray(y_true).astype(int)
        p = np.asarray(proba, dtype=float)
        if self.privileged is not None:
            return self._fit_groups(y, p, protected)
        a = check_protected(protected, len(p))
        th, m = self.grid()
        # Positives of every grid point by counting, not by labelling every row: an
        # unprivileged row is positive iff p > theta - margin (above the region, or in it);
        # a privileged row iff p > theta + margin.  Per (A, Y) cell, a sorted copy of the
        # scores and one searchsorted per grid point give the counts: O(n log n + G log n).
        cut = {0: th - m, 1: th + m}
        pos, size = {}, {}
        for g in (0, 1):
            for t in (0, 1):
                s_c = np.sort(p[(a == g) & (y == t)])
                size[g, t] = len(s_c)
                pos[g, t] = len(s_c) - np.searchsorted(s_c, cut[g], side="right")
        with np.errstate(invalid="ignore", divide="ignore"):
            tpr = {g: pos[g, 1] / size[g, 1] for g in (0, 1)}
            fpr = {g: pos[g, 0] / size[g, 0] for g in (0, 1)}
            sel = {g: (pos[g, 0] + pos[g, 1]) / (size[g, 0] + size[g, 1]) for g in (0, 1)}
            n_pos, n_neg = size[0, 1] + size[1, 1], size[0, 0] + size[1, 0]
            ba = 0.5 * ((pos[0, 1] + pos[1, 1]) / n_pos + 1 - (pos[0, 0] + pos[1, 0]) / n_neg)
        bias = {"spd": sel[0] - sel[1], "eod": tpr[0] - tpr[1],
                "aod": 0.5 * ((fpr[0] - fpr[1]) + (tpr[0] - tpr[1]))}[self.metric]
        ok = (bias >= self.metric_lb) & (bias <= self.metric_ub)
        return self._select(th, m, ba, bias, ok)

    def _privileged_mask(self, protected, n: int) -> tuple[np.ndarray, np.ndarray]:
        from ..fairness.groupwise import _groups
        labels = _groups(protected, n)
        priv = self.privileged if isinstance(self.privileged, (list, tuple, set)) else \
            [self.privileged]
        priv = {str(v) for v in priv}
        unknown = sorted(priv - set(labels))
        if unknown and not hasattr(self, "groups_"):
            raise GroupError(f"privileged value(s) {unknown} do not occur in the protected "
                             f"attribute (values: {sorted(set(labels))[:8]}).")
        return labels, np.isin(labels, list(priv))

    def _fit_groups(self, y: np.ndarray, p: np.ndarray, protected) -> "RejectOption":
        """Worst-pair version for any number of groups (see the class docstring)."""
        labels, priv = self._privileged_mask(protected, len(p))
        groups = sorted(set(labels))
        if len(groups) < 2 or priv.all() or not priv.any():
            raise GroupError("reject option needs at least two groups, privileged and not.")
        th, m = self.grid()
        rates: dict[str, list] = {"sel": [], "tpr": [], "fpr": []}
        tp_all = np.zeros(len(th))
        fp_all = np.zeros(len(th))
        for g in groups:
            mask = labels == g
            cut = th + m if priv[mask][0] else th - m
            counts = {}
            for t in (0, 1):
                s_c = np.sort(p[mask & (y == t)])
                counts[t] = (len(s_c) - np.searchsorted(s_c, cut, side="right"), len(s_c))
            (fp, n0), (tp, n1) = counts[0], counts[1]
            tp_all, fp_all = tp_all + tp, fp_all + fp
            rates["sel"].append((tp + fp) / (n0 + n1))
            if n1:
                rates["tpr"].append(tp / n1)
            if n0:
                rates["fpr"].append(fp / n0)

        def gap(r: list) -> np.ndarray:
            r = np.vstack(r)
            return r.max(0) - r.min(0)
        bias = {"spd": lambda: gap(rates["sel"]), "eod": lambda: gap(rates["tpr"]),
                "aod": lambda: 0.5 * (gap(rates["tpr"]) + gap(rates["fpr"]))}[self.metric]()
        n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
        if n_pos == 0 or n_neg == 0:
            raise GroupError("reject option needs both labels among the rows.")
        ba = 0.5 * (tp_all / n_pos + 1 - fp_all / n_neg)
        self.groups_ = groups
        return self._select(th, m, ba, bias, bias <= self.metric_ub)

    def _select(self, th: np.ndarray, m: np.ndarray, ba: np.ndarray, bias: np.ndarray,
                ok: np.ndarray) -> "RejectOption":
        """Keep the grid point with the highest balanced accuracy among those meeting the
        constraint (first on ties), else the one with the smallest bias."""
        self.constraint_met_ = bool(ok.any())
        best = (np.flatnonzero(ok)[np.argmax(ba[ok])] if self.constraint_met_
                else int(np.nanargmin(bias)))
        self.threshold_, self.margin_ = float(th[best]), float(m[best])
        self.balanced_accuracy_, self.bias_ = float(ba[best]), float(bias[best])
        self.grid_balanced_accuracy_, self.grid_bias_ = ba, bias
        return self

    def predict(self, proba, protected) -> np.ndarray:
        p = np.asarray(proba, dtype=float)
        if self.privileged is not None:
            _, priv = self._privileged_mask(protected, len(p))
            return self._labels(p, priv.astype(int), np.array([self.threshold_]),
                                np.array([self.margin_]))[0].astype(int)
        a = check_protected(protected, len(p))
        return self._labels(p, a, np.array([self.threshold_]),
                            np.array([self.margin_]))[0].astype(int)


class _Scores(ClassifierMixin, BaseEstimator):
    """A prefit estimator whose predict_proba returns given scores (for fairlearn)."""

    def __init__(self, scorer=None):
        self.scorer = scorer
        self.classes_ = np.array([0, 1])

    def fit(self, X, y):
        return self

    def predict_proba(self, X):
        p = np.asarray(self.scorer(X), dtype=float)
        return np.column_stack([1 - p, p])

    def predict(self, X):
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


def equalized_odds_postprocessing(scorer, X, y, protected, *, random_state: int = 0):
    """Hardt et al.'s equalized-odds post-processing through fairlearn's
    ``ThresholdOptimizer`` (prefit, randomized group thresholds on ``scorer(X)``).

    ``protected``: a 0/1 attribute or any number of groups (labels of any type; a
    DataFrame's columns make intersections).

    Returns the fitted optimizer; predict with
    ``opt.predict(X, sensitive_features=a, random_state=...)`` (``a`` the same kind of
    labels)."""
    from fairlearn.postprocessing import ThresholdOptimizer

    from ..fairness.groupwise import _groups
    labels = _groups(protected, len(np.asarray(y)))          # checks only; fairlearn keeps
    a = protected if hasattr(protected, "columns") else np.asarray(protected)  # the labels
    if len(np.unique(labels)) < 2:
        raise GroupError("equalized-odds post-processing needs at least two groups.")
    opt = ThresholdOptimizer(estimator=_Scores(scorer), constraints="equalized_odds",
                             prefit=True, predict_method="predict_proba",
                             objective="balanced_accuracy_score")
    opt.fit(X, np.asarray(y).astype(int), sensitive_features=a)
    opt.random_state_ = random_state
    return opt
