"""Real clinical files (issue 14), measured in one run.

Usage:  NOHARM_DATA_DIR=../shared/data python benchmarks/real_files.py [--jobs 2]

1. The Cleveland file as distributed (no header, '?'), one command: rows kept with
   per-run imputation vs --dropna, wall time, test AUROC of the reference and the
   guarded model.
2. Informative missingness (a value missing mostly for positives), 5 seeds: held-out AUROC
   of logistic regression and the generic MLP with median + indicator imputation, against
   dropping the column and against training on complete rows only (--dropna); medians.
3. Cost of imputation: the generic MLP trained on the same data with and without 20 % of
   one column missing (wall-time ratio measured in this run).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from noharm.datasets import load_tabular
from noharm.datasets.reading import ReadOptions
from noharm.models import GenericClassifier, ReferenceClassifier

NAMES = "age,sex,cp,trestbps,chol,fbs,restecg,thalach,exang,oldpeak,slope,ca,thal,num"


def cleveland(jobs: int) -> None:
    f = Path(os.environ["NOHARM_DATA_DIR"]) / "uci_heart" / "processed.cleveland.data"
    read = ReadOptions(names=tuple(NAMES.split(",")), na_values=("?",))
    kept = len(load_tabular(f, target="num>0", groups=["age:55", "sex"], read=read).y)
    dropped = len(load_tabular(f, target="num>0", groups=["age:55", "sex"], read=read,
                               dropna=True).y)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "noharm.cli", "personalize", "--data", str(f), "--names",
               NAMES, "--na-values", "?", "--target", "num>0", "--group", "age:55",
               "--group", "sex", "--jobs", str(jobs), "--output", f"{tmp}/run", "--quiet"]
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t
        s = pd.read_csv(f"{tmp}/run/summary.csv")
    auc = s[(s.metric == "auroc") & (s.subgroup == "all")].set_index("model")["mean"]
    print("### 1. Cleveland as distributed, one command\n")
    print(f"rows used: {kept} with imputation, {dropped} with --dropna")
    print(f"wall time (default 5 seeds x 5 folds, --jobs {jobs}): {wall:.1f} s")
    print("test AUROC (all rows, mean over 25 runs): "
          + ", ".join(f"{m} {auc[m]:.3f}" for m in ("reference", "guarded", "generic",
                                                     "logreg", "hgb") if m in auc))


def informative(seeds: int = 5) -> None:
    rows = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        n = 1500
        x = rng.normal(size=(n, 3))
        y = (x[:, 0] + rng.normal(size=n) > 0.5).astype(int)
        X = pd.DataFrame(x, columns=["a", "b", "c"])
        X.loc[(y == 1) & (rng.random(n) < 0.7), "c"] = np.nan
        tr, te = np.arange(1000), np.arange(1000, n)
        Xtr, Xte, ytr, yte = X.iloc[tr], X.iloc[te], y[tr], y[te]
        complete = Xtr.notna().all(axis=1).to_numpy()
        auc = {}
        auc["logreg, impute"] = roc_auc_score(
            yte, ReferenceClassifier().fit(Xtr, ytr).predict_proba(Xte)[:, 1])
        auc["logreg, column dropped"] = roc_auc_score(
            yte, ReferenceClassifier().fit(Xtr[["a", "b"]], ytr)
            .predict_proba(Xte[["a", "b"]])[:, 1])
        # complete rows only: the model cannot score rows with gaps; they get the median c
        m = ReferenceClassifier(impute="none").fit(Xtr[complete], ytr[complete])
        auc["logreg, --dropna rows"] = roc_auc_score(
            yte, m.predict_proba(Xte.fillna(Xtr[complete].median()))[:, 1])
        auc["MLP, impute"] = roc_auc_score(
            yte, GenericClassifier(random_state=seed).fit(Xtr, ytr).predict_proba(Xte)[:, 1])
        auc["MLP, column dropped"] = roc_auc_score(
            yte, GenericClassifier(random_state=seed).fit(Xtr[["a", "b"]], ytr)
            .predict_proba(Xte[["a", "b"]])[:, 1])
        rows.append(auc)
    med = pd.DataFrame(rows).median()
    print(f"\n### 2. Informative missingness (c missing for 70 % of positives), median of "
          f"{seeds} seeds, held-out AUROC\n")
    for k, v in med.items():
        print(f"- {k}: {v:.3f}")


def cost() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    X = pd.DataFrame(rng.normal(size=(n, 20)), columns=[f"x{i}" for i in range(20)])
    y = (X.x0 + rng.normal(size=n) > 0).astype(int)
    Xm = X.copy()
    Xm.loc[rng.random(n) < 0.2, "x3"] = np.nan
    times = {}
    for name, data in (("complete", X), ("20 % of x3 missing", Xm)):
        t = time.perf_counter()
        GenericClassifier(max_epochs=20, patience=100).fit(data, y)
        times[name] = time.perf_counter() - t
    print("\n### 3. Cost of imputation (generic MLP, 4000 x 20, 20 epochs)\n")
    print(", ".join(f"{k} {v:.2f} s" for k, v in times.items())
          + f"; ratio {times['20 % of x3 missing'] / times['complete']:.2f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    cleveland(a.jobs)
    informative()
    cost()
