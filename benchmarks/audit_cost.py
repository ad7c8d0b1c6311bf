"""Audit timings (issue 3).

Usage:
  NOHARM_DATA_DIR=../shared/data python benchmarks/audit_cost.py

1. Audit of the Heart protocol: trains the protocol's generic and conditional-bias models
   once (not timed), then times `audit_models` on the test part (prediction + explanation
   BoP with Integrated Gradients, bootstrap, McNemar, bounds). Target: <= 10 s.
2. Integrated-Gradients explanation cost (sufficiency + incomprehensiveness, 50 steps, r =
   40 %) of a default generic network on 15,000 x 600 synthetic data: seconds and rows/s.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from noharm.audit import audit_models, explanation_costs
from noharm.audit.run import torch_forward
from noharm.datasets import load_heart
from noharm.experiments import PersonalizationStudy, RunOptions, run_study
from noharm.models import GenericClassifier, NetClassifier
from noharm.training import set_threads


def heart_audit() -> None:
    cohort = load_heart()
    with tempfile.TemporaryDirectory() as tmp:
        res = run_study(PersonalizationStudy(models=("generic", "conditional-bias")), cohort,
                        RunOptions(n_jobs=2), model_dir=tmp)
        h0 = NetClassifier.load(Path(tmp) / "generic" / "split0")
        hp = NetClassifier.load(Path(tmp) / "conditional-bias" / "split0")
    test = res.plan.rows(0, "test")
    g = cohort.subgroups.to_numpy()[test]
    t0 = time.perf_counter()
    out = audit_models(h0, hp, cohort.X.iloc[test], cohort.y.iloc[test], sensitive_features=g)
    dt = time.perf_counter() - t0
    print(f"heart audit (25-run ensembles, {len(test)} test rows, IG + bootstrap 1000): "
          f"{dt:.2f} s (target <= 10 s) -> {'OK' if dt <= 10 else 'MISSED'}; "
          f"{len(out.table)} table rows")


def ig_cost(n: int = 15_000, f: int = 600) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, f)).astype(np.float32)
    y = (X[:, :10].sum(1) > 0).astype(int)
    model = GenericClassifier(max_epochs=1, patience=1).fit(X, y)   # weights don't matter
    fwd = torch_forward(model)
    with set_threads(1):
        t0 = time.perf_counter()
        explanation_costs(fwd, X, method="integrated_gradients", n_steps=50)
        dt = time.perf_counter() - t0
    print(f"IG explanation cost, {n} x {f}, 6x64 MLP, 50 steps, 1 thread: {dt:.1f} s "
          f"({n / dt:.0f} rows/s, {n * 50 / dt:.0f} IG evaluations/s)")


if __name__ == "__main__":
    heart_audit()
    ig_cost()
