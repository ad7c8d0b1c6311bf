"""Equalized-odds post-processing on diabetes130 (issue 15): noharm (fairlearn's
ThresholdOptimizer) beside AIF360's EqOddsPostprocessing (Hardt et al.'s linear program),
over several outer splits.

    NOHARM_DATA_DIR=../shared/data python benchmarks/eq_odds.py [--splits 5] [--jobs 2]

Per outer split (the debias study's plan: 60 % train part, 20 % guard, 20 % test, by
patient), one standard network is trained; each post-processor is fitted on the guard rows'
scores and measured on the test rows: balanced accuracy and the equalized-odds difference
max(|dTPR|, |dFPR|) between privileged and the rest (race: Caucasian; gender: Male).
AIF360 is needed only here (pip install aif360 --no-deps; never a noharm dependency).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
from joblib import Parallel, delayed

from noharm.datasets import load_dataset
from noharm.debias import as_module, equalized_odds_postprocessing
from noharm.debias._common import Evaluator
from noharm.experiments import DebiasStudy, build_plan
from noharm.fairness import balanced_accuracy, best_threshold
from noharm.fairness.metrics import equalized_odds_difference
from noharm.models import GenericClassifier

PRIVILEGED = {"race": "Caucasian", "gender": "Male"}


def _aif360(y_val, p_val, a_val, p_test, a_test, seed, threshold):
    import pandas as pd
    from aif360.algorithms.postprocessing import EqOddsPostprocessing
    from aif360.datasets import BinaryLabelDataset

    def ds(y, a, p=None):
        d = BinaryLabelDataset(df=pd.DataFrame({"y": y.astype(float), "a": a.astype(float)}),
                               label_names=["y"], protected_attribute_names=["a"])
        if p is not None:               # predictions: scores and labels at the threshold
            d.scores = p.reshape(-1, 1).astype(float)
            d.labels = (p >= threshold).astype(float).reshape(-1, 1)
        return d
    true = ds(y_val, a_val)
    pred = ds(y_val, a_val, p_val)
    eo = EqOddsPostprocessing(unprivileged_groups=[{"a": 0}], privileged_groups=[{"a": 1}],
                              seed=seed).fit(true, pred)
    out = eo.predict(ds(np.zeros(len(p_test)), a_test, p_test))
    return out.labels.ravel().astype(int)


def one_split(outer: int, cohort_kw: dict) -> list[dict]:
    cohort = load_dataset("diabetes130", **cohort_kw)
    study = DebiasStudy(outer_splits=5, protected="race")
    plan = build_plan(study, cohort)
    X, y = cohort.X.to_numpy(np.float32), cohort.y.to_numpy().astype(int)
    run = plan.runs(outer)[0]
    val, test = plan.rows(outer, "guard"), plan.rows(outer, "test")
    cache = os.path.join(tempfile.gettempdir(), f"noharm-eqodds-{plan.sha256[:12]}-{outer}.npz")
    if os.path.exists(cache):                       # the network's scores, reused
        z = np.load(cache)
        p_val, p_test = z["p_val"], z["p_test"]
    else:
        m = GenericClassifier(max_epochs=60, patience=10).fit_runs(
            X, y, train_indices=[run["train"]], val_indices=[run["early_stop"]],
            seeds=[run["model_seed"]])
        net = as_module(m)
        race = (cohort.groups["race"].astype(str).to_numpy() == "Caucasian").astype(int)
        ev = Evaluator(X[val], y[val], race[val])
        p_val, p_test = ev.proba(net), ev.proba(net, X[test])
        np.savez(cache, p_val=p_val, p_test=p_test)
    t, _ = best_threshold(y[val], p_val)
    rows = []
    for attr, priv in PRIVILEGED.items():
        a = (cohort.groups[attr].astype(str).to_numpy() == priv).astype(int)
        preds = {"original": (p_test >= t).astype(int)}
        opt = equalized_odds_postprocessing(lambda Z: np.asarray(Z)[:, 0], p_val[:, None],
                                            y[val], a[val], random_state=outer)
        preds["noharm eq_odds"] = opt.predict(p_test[:, None], sensitive_features=a[test],
                                              random_state=outer)
        preds["AIF360 EqOddsPostprocessing"] = _aif360(y[val], p_val, a[val], p_test, a[test],
                                                       outer, t)
        for method, pred in preds.items():
            rows.append({"split": outer, "attribute": attr, "method": method,
                         "ba": balanced_accuracy(y[test], pred),
                         "eqodds": abs(equalized_odds_difference(y[test], pred, a[test]))})
    return rows


def main() -> None:
    import pandas as pd
    ap = argparse.ArgumentParser()
    ap.add_argument("--splits", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    t0 = time.perf_counter()
    parts = Parallel(n_jobs=args.jobs)(delayed(one_split)(o, {}) for o in range(args.splits))
    df = pd.DataFrame([r for p in parts for r in p])
    print(f"{args.splits} outer splits, {time.perf_counter() - t0:.0f} s wall\n")
    for attr in PRIVILEGED:
        d = df[df.attribute == attr]
        g = d.groupby("method", sort=False).agg(ba=("ba", "mean"), ba_sd=("ba", "std"),
                                                 eqodds=("eqodds", "mean"),
                                                 eqodds_sd=("eqodds", "std"))
        print(f"### {attr} ({PRIVILEGED[attr]} vs the rest): test rows, mean ± sd over splits")
        print("| method | balanced accuracy | equalized-odds difference |\n|---|---|---|")
        for method, r in g.iterrows():
            print(f"| {method} | {r.ba:.3f} ± {r.ba_sd:.3f} | {r.eqodds:.3f} ± "
                  f"{r.eqodds_sd:.3f} |")
        wide = d.pivot(index="split", columns="method", values="eqodds")
        print("per split:", wide.round(3).to_dict("list"), "\n")


if __name__ == "__main__":
    main()
