"""Personalization for a continuous outcome (issue 20): diabetes130 length of stay.

Usage:  NOHARM_DATA_DIR=../shared/data python benchmarks/regression.py [--jobs 2]

1. The personalization study with --task regression on time_in_hospital (days), groups
   age (young < 60 <= old) x gender: generic, decoupled, conditional bias, ridge and
   gradient boosting, the squared-error guard; one outer split, 1 seed x 5 folds
   (cross-fitted guard), batch 512, at most 30 epochs (patience 5) to fit the machine.
   Per subgroup MSE (days²) with gains against the reference, intervals and verdicts.
2. The audit of the conditional-bias regressor against the generic one on the test rows
   (runs averaged): squared-error BoP per subgroup, the fitted family of the individual
   BoP values, and k_max (how many binary attributes this many rows could validate at
   eps = 0.1 days²).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from noharm.audit import audit_models
from noharm.datasets import Cohort, load_dataset
from noharm.experiments import PersonalizationStudy, RunOptions, run_study
from noharm.models import NetClassifier


def main(jobs: int) -> None:
    full = load_dataset("diabetes130", target="time_in_hospital")
    cohort = Cohort(X=full.X, y=full.y, groups=full.groups[["age", "gender"]],
                    meta={**full.meta, "name": "diabetes130 length of stay"},
                    split_by=full.split_by)
    study = PersonalizationStudy(task="regression", n_seeds=1, n_folds=5, batch_size=512,
                                 max_epochs=30, patience=5)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        res = run_study(study, cohort, RunOptions(n_jobs=jobs), model_dir=tmp)
        wall = time.perf_counter() - t
        print(f"rows {len(cohort)}, features {cohort.X.shape[1]}, wall {wall:.0f} s on "
              f"{jobs} workers; seconds per model: "
              + ", ".join(f"{k} {v:.0f}" for k, v in res.timings.items()))
        print(res.text)
        test = res.plan.rows(0, "test")
        h0 = NetClassifier.load(Path(tmp) / "generic" / "split0")
        hp = NetClassifier.load(Path(tmp) / "conditional-bias" / "split0")
        g = cohort.subgroups.to_numpy()[test]
        audit = audit_models(h0, hp, cohort.X.iloc[test], cohort.y.iloc[test],
                             sensitive_features=g, explain=False, eps=0.1)
    print("\n### Audit: conditional bias (hp) vs generic (h0), squared error, test rows\n")
    print(audit.table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print("\n" + "\n".join(audit.summary_lines()))
    print(f"reference chosen by the guard: "
          f"{res.results.loc[res.results.metric == 'reference', 'model'].tolist()}")
    dep = res.results[(res.results.role == "guard") & (res.results.metric == "deployed")]
    print("deployed per subgroup: " + ", ".join(f"{s} {m}" for s, m in
                                                 zip(dep.subgroup, dep.model)))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=2)
    main(ap.parse_args().jobs)
