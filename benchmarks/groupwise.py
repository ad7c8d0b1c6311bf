"""Fairness metrics for any number of groups (issue 15), against fairlearn, in one run.

Usage:  NOHARM_DATA_DIR=../shared/data python benchmarks/groupwise.py

On all 101,763 diabetes130 rows (race: 6 groups; race x gender: 17) with a simple rule's
predictions: seconds per call of each metric (noharm with undefined="zero", fairlearn's
convention for groups without positives, vs fairlearn; the same value checked),
and a 200-replicate bootstrap of per-group accuracy and recall (noharm's group_table vs
fairlearn's MetricFrame(n_boot=200)).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, recall_score

import fairlearn.metrics as fm
from noharm.fairness import groupwise as gw


def timed(fn, repeat=3):
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return out, best


def main() -> None:
    f = Path(os.environ["NOHARM_DATA_DIR"]) / "diabetes130" / "diabetic_data.csv"
    df = pd.read_csv(f, usecols=["race", "gender", "readmitted", "num_medications",
                                 "number_inpatient"])
    y = (df.readmitted == "<30").astype(int).to_numpy()
    pred = ((df.number_inpatient > 0) | (df.num_medications > 25)).astype(int).to_numpy()
    print(f"rows {len(y)}")
    print("| metric | sensitive features | noharm s | fairlearn s | ratio | same value |")
    print("|---|---|---|---|---|---|")
    for name in ("demographic_parity_difference", "equalized_odds_difference",
                 "equal_opportunity_ratio"):
        for label, sf in (("race", df["race"]), ("race x gender", df[["race", "gender"]])):
            a, ta = timed(lambda: getattr(gw, name)(y, pred, sensitive_features=sf,
                                                    undefined="zero"))
            b, tb = timed(lambda: getattr(fm, name)(y, pred, sensitive_features=sf))
            print(f"| {name} | {label} | {ta:.4f} | {tb:.4f} | {tb / ta:.0f}x | "
                  f"{abs(a - b) < 1e-12} |")
    metrics = {"accuracy": accuracy_score, "recall": recall_score}
    _, ta = timed(lambda: gw.group_table(y, pred, sensitive_features=df["race"],
                                         metrics=metrics, n_boot=200), repeat=1)
    _, tb = timed(lambda: fm.MetricFrame(metrics=metrics, y_true=y, y_pred=pred,
                                         sensitive_features=df["race"], n_boot=200,
                                         ci_quantiles=[0.025, 0.975], random_state=0),
                  repeat=1)
    print(f"\nbootstrap, 200 replicates, accuracy + recall per race group: noharm "
          f"{ta:.2f} s, fairlearn MetricFrame {tb:.2f} s, ratio {tb / ta:.1f}x")


if __name__ == "__main__":
    main()
