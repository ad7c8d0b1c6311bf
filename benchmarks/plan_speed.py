"""Grouped stratified folds on diabetes130 (70,000+ patients): scikit-learn's
StratifiedGroupKFold against noharm.splits.grouped_folds (the same rule), one hold-out of
the split plan, and the whole 5-split debias plan.

    NOHARM_DATA_DIR=../shared/data python benchmarks/plan_speed.py
"""
from __future__ import annotations

import time
import warnings

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from noharm.datasets import load_dataset
from noharm.experiments import DebiasStudy, build_plan
from noharm.splits import _strata, grouped_folds


def main() -> None:
    c = load_dataset("diabetes130")
    ids, y = c.split_by.to_numpy(), c.y.to_numpy()
    t0 = time.perf_counter()
    groups = c.subgroups.to_numpy().astype(str)
    t_labels = time.perf_counter() - t0
    strata = _strata(groups, y, 1)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        next(StratifiedGroupKFold(5, shuffle=True, random_state=0).split(ids, strata, ids))
    t_sk = time.perf_counter() - t0
    t0 = time.perf_counter()
    folds = grouped_folds(strata, ids, 5, 0)
    t_nh = time.perf_counter() - t0
    t0 = time.perf_counter()
    build_plan(DebiasStudy(outer_splits=5, protected="race"), c)
    t_plan = time.perf_counter() - t0
    print(f"{len(y):,} rows, {len(np.unique(ids)):,} patients, {len(np.unique(strata))} strata")
    print(f"subgroup labels: {t_labels:.2f} s")
    print(f"one 5-fold grouped split: scikit-learn {t_sk:.1f} s, noharm {t_nh:.2f} s "
          f"({t_sk / t_nh:.0f}x); fold sizes {np.bincount(folds).tolist()}")
    print(f"whole debias plan, 5 outer splits (15 grouped splits): {t_plan:.1f} s")


if __name__ == "__main__":
    main()
