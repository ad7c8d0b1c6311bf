"""Row-index primitives of the split plan (:mod:`noharm.experiments.plan`), kept below
the models so the guarded estimator can cross-fit with the same rules: stratified by
subgroup x label (coarser when a stratum is too small), grouped by patient id."""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, train_test_split

from ._validation import check_positive_int


def _strata(groups: np.ndarray, y: np.ndarray | None, minimum: int) -> np.ndarray | None:
    """subgroup x label, else subgroup, else label, else None: the finest key whose
    smallest stratum has ``minimum`` rows."""
    keys = []
    if y is not None:
        keys.append(np.char.add(groups, "|" + y.astype(str)))
    keys.append(groups)
    if y is not None:
        keys.append(y.astype(str))
    for key in keys:
        if np.unique(key, return_counts=True)[1].min() >= minimum:
            return key
    return None


def holdout(idx: np.ndarray, size: float, groups: np.ndarray, y: np.ndarray | None,
             ids: np.ndarray | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rest, held): a stratified hold-out of ``size`` of ``idx`` (grouped by ``ids``)."""
    if ids is None:
        strat = _strata(groups[idx], None if y is None else y[idx], 2)
        rest, held = train_test_split(idx, test_size=size, random_state=seed, stratify=strat)
    else:
        k = max(2, int(round(1 / size)))
        strat = _strata(groups[idx], None if y is None else y[idx], 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            sgk = StratifiedGroupKFold(k, shuffle=True, random_state=seed)
            a, b = next(sgk.split(idx, strat if strat is not None else np.zeros(len(idx)),
                                  ids[idx]))
        rest, held = idx[a], idx[b]
    return np.sort(rest), np.sort(held)


def fold_ids(part: np.ndarray, k: int, groups: np.ndarray, y: np.ndarray | None,
              ids: np.ndarray | None, seed: int) -> np.ndarray:
    """Fold number (0..k-1) of every row of ``part``."""
    strat = _strata(groups[part], None if y is None else y[part], k)
    strat = np.zeros(len(part)) if strat is None else strat
    out = np.empty(len(part), dtype=np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if ids is None:
            folds = StratifiedKFold(k, shuffle=True, random_state=seed).split(part, strat)
        else:
            folds = StratifiedGroupKFold(k, shuffle=True, random_state=seed).split(
                part, strat, ids[part])
        for f, (_, va) in enumerate(folds):
            out[va] = f
    return out


def cross_fit_runs(groups: Any, y: Any = None, *, n_folds: int = 5, random_state: int = 0,
                   ids: Any = None) -> list[dict]:
    """Cross-fitting runs over every row (no test part): run ``k`` guards fold ``k``,
    early-stops on fold ``k + 1`` and trains on the others, so every row is guarded
    exactly once by a model that neither trained nor early-stopped on it."""
    check_positive_int(n_folds, name="n_folds", minimum=3)
    groups = np.asarray(groups).astype(str)
    rows = np.arange(len(groups))
    folds = fold_ids(rows, n_folds, groups, None if y is None else np.asarray(y),
                      None if ids is None else np.asarray(ids), random_state + 1)
    out = []
    for k in range(n_folds):
        gd, es = folds == k, folds == (k + 1) % n_folds
        out.append({"seed": 1, "fold": k, "model_seed": 10 + k, "train": rows[~(gd | es)],
                    "early_stop": rows[es], "guard": rows[gd]})
    return out


__all__ = ["cross_fit_runs", "fold_ids", "holdout"]
