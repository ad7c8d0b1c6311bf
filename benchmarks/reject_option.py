"""Reject option classification: noharm vs AIF360 on the same 20,000 x 20 synthetic data
and the same grid (100 thresholds x 50 margins, |SPD| <= 0.05).

AIF360 is needed only here:  pip install aif360   (never a noharm dependency)
Usage:  python benchmarks/reject_option.py
"""
from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from noharm.debias import RejectOption


def data(n: int = 20_000, f: int = 20, seed: int = 0):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2, n)
    X = rng.normal(size=(n, f))
    X[:, 0] += a
    y = (X[:, 1] + X[:, 2] + 2.0 * a + rng.normal(size=n) > 1.0).astype(int)
    p = LogisticRegression(max_iter=1000).fit(X, y).predict_proba(X)[:, 1]
    return X, y, a, p


def main() -> None:
    X, y, a, p = data()
    t0 = time.perf_counter()
    ours = RejectOption(metric="spd").fit(y, p, a)
    t_ours = time.perf_counter() - t0

    from aif360.algorithms.postprocessing import RejectOptionClassification
    from aif360.datasets import BinaryLabelDataset
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    df["a"], df["y"] = a, y
    true = BinaryLabelDataset(df=df, label_names=["y"], protected_attribute_names=["a"])
    pred = true.copy(deepcopy=True)
    pred.scores = p.reshape(-1, 1)
    roc = RejectOptionClassification(unprivileged_groups=[{"a": 0}],
                                     privileged_groups=[{"a": 1}],
                                     low_class_thresh=0.01, high_class_thresh=0.99,
                                     num_class_thresh=100, num_ROC_margin=50,
                                     metric_name="Statistical parity difference",
                                     metric_ub=0.05, metric_lb=-0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        roc.fit(true, pred)
        t_aif = time.perf_counter() - t0
    same = (np.isclose(ours.threshold_, roc.classification_threshold)
            and np.isclose(ours.margin_, roc.ROC_margin))
    print("20,000 x 20, grid 100 x 50, SPD in [-0.05, 0.05]")
    print(f"noharm: {t_ours * 1e3:.1f} ms   threshold {ours.threshold_:.4f} margin "
          f"{ours.margin_:.4f}  BA {ours.balanced_accuracy_:.4f}  SPD {ours.bias_:+.4f}")
    print(f"AIF360: {t_aif:.2f} s    threshold {roc.classification_threshold:.4f} margin "
          f"{roc.ROC_margin:.4f}")
    print(f"speed-up {t_aif / t_ours:.0f}x; same threshold and margin: {same}")


if __name__ == "__main__":
    main()
