"""FairGrad cost per epoch against generic training (issue 5).

k sensitive attributes cost k + 1 backward passes per step; this measures the ratio on
synthetic data of the diabetes130 shape (n rows x 198 features), one thread.

Usage:  python benchmarks/fairgrad_epoch.py [--n 20000]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from noharm.models import FairGradClassifier, GenericClassifier


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.n, 198)).astype(np.float32)
    y = (X[:, :5].sum(1) > 0).astype(int)
    S = pd.DataFrame({"race": rng.integers(0, 6, args.n), "gender": rng.integers(0, 2, args.n),
                      "age": rng.integers(0, 2, args.n)})
    kw = dict(max_epochs=args.epochs, patience=args.epochs + 1)
    rows = []
    t0 = time.perf_counter()
    GenericClassifier(**kw).fit(X, y)
    base = (time.perf_counter() - t0) / args.epochs
    rows.append(("generic", 1, base))
    for k in (1, 2, 3):
        t0 = time.perf_counter()
        FairGradClassifier(**kw).fit(X, y, sensitive_features=S.iloc[:, :k])
        rows.append((f"fairgrad, {k} attribute(s)", k + 1,
                     (time.perf_counter() - t0) / args.epochs))
    print(f"{args.n} x 198, 6 x 64 MLP, batch 64, one thread, {args.epochs} epochs each")
    for name, passes, s in rows:
        print(f"{name:26s} {passes} backward passes/step  {s:6.2f} s/epoch  "
              f"{s / base:4.2f}x generic")


if __name__ == "__main__":
    main()
