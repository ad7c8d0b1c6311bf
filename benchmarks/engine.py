"""Experiment engine overheads on the Heart protocol (issue 8), measured in one run.

Usage:  NOHARM_DATA_DIR=../shared/data python benchmarks/engine.py

Prints wall times (generic + decoupled + conditional bias, 25 runs each, ensembles
of 25) for: --jobs 1; --jobs 2 (forked pool); --jobs 1 with the SQLite results
store; a Dask LocalCluster of 2 one-thread workers (cluster start-up timed apart);
and checks that every variant gives the same results.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pandas as pd

from noharm.datasets import load_heart
from noharm.experiments import (PersonalizationStudy, RunOptions, build_plan, run_study,
                                study_identity)
from noharm.experiments.store import ResultsStore

MODELS = ("generic", "decoupled", "conditional-bias")


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    from distributed import LocalCluster

    cohort = load_heart()
    study = PersonalizationStudy(models=MODELS)
    base, t1 = timed(lambda: run_study(study, cohort, RunOptions(n_jobs=1)).results)
    par, t2 = timed(lambda: run_study(study, cohort, RunOptions(n_jobs=2)).results)
    with tempfile.TemporaryDirectory() as tmp:
        ident = study_identity(study, cohort, build_plan(study, cohort))
        with ResultsStore(Path(tmp) / "results.db", ident) as st:
            stored, ts = timed(lambda: run_study(study, cohort, store=st).results)
    cluster, tc = timed(lambda: LocalCluster(n_workers=2, threads_per_worker=1,
                                             processes=True, dashboard_address=None))
    with cluster:
        c = RunOptions(backend="dask", scheduler=cluster.scheduler_address)
        dask, td = timed(lambda: run_study(study, cohort, c).results)
        dask2, td2 = timed(lambda: run_study(study, cohort, c).results)
    for name, other in (("jobs 2", par), ("store", stored), ("dask", dask), ("dask 2", dask2)):
        pd.testing.assert_frame_equal(base, other)
        print(f"{name}: results identical to --jobs 1")
    print(f"--jobs 1                 {t1:6.2f} s")
    print(f"--jobs 2                 {t2:6.2f} s   speed-up {t1 / t2:.2f}x")
    print(f"--jobs 1 + results store {ts:6.2f} s   overhead {100 * (ts / t1 - 1):+.1f} %")
    print(f"LocalCluster start       {tc:6.2f} s")
    print(f"dask (2 workers), 1st    {td:6.2f} s   vs --jobs 2: {td / t2:.2f}x")
    print(f"dask (2 workers), 2nd    {td2:6.2f} s   vs --jobs 2: {td2 / t2:.2f}x")


if __name__ == "__main__":
    main()
