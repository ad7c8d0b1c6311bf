"""The guard's null calibration and power (issue 27), end to end with fitting.

Usage:  python benchmarks/guard_null.py [--reps 100] [--jobs 1]

Null cohorts (``make_null_cohort``: y depends on X only, 3 sites x 2 sexes at random =
6 subgroups).  Per scenario: in how many of ``reps`` cohorts the guard certified
personalization for at least one subgroup (family-wise), with an exact 95 % interval,
and how often the certified candidate also beat the reference on that subgroup's test
rows (what "truly better" means for a fitted model, seen on data the guard never saw).

1. twin: GuardedClassifier, the candidate is the reference's own algorithm (generic MLP
   2 x 16) with another initialisation; 600 rows.
2. twin+1: the same with hidden_units + 1 (the issue's twin: another architecture).
3. study, reference generic: decoupled and conditional bias against the generic MLP
   (the seed paper's comparison); 400 rows.
4. study, default: reference best (a candidate must beat every generic model).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats

from noharm.audit.bop import pointwise_loss
from noharm.datasets import make_null_cohort
from noharm.experiments import PersonalizationStudy, RunOptions, run_study
from noharm.models import GenericClassifier, GuardedClassifier

NET = dict(hidden_layers=2, hidden_units=16, max_epochs=30, patience=5, batch_size=64)


def twin(r: int, units: int) -> tuple[bool, int]:
    c = make_null_cohort(600, random_state=r)
    new = make_null_cohort(2000, random_state=10_000 + r)
    g = GuardedClassifier(reference=GenericClassifier(**NET),
                          candidates={"twin": GenericClassifier(**{**NET, "hidden_units": units},
                                                                random_state=1)},
                          n_seeds=2, n_folds=3, random_state=r)
    g.fit(c.X, c.y, sensitive_features=c.subgroups)
    cert = g.certificate_[g.certificate_["deployed"] != "reference"]
    y, grp = new.y.to_numpy(), new.subgroups.to_numpy()
    right = 0
    for s in cert["group"]:
        m = grp == s
        loss = {k: pointwise_loss(y[m], mdl.predict_proba(new.X[m])[:, 1], "log_loss").mean()
                for k, mdl in g.models_.items()}
        right += loss["twin"] < loss["reference"]
    return len(cert) > 0, right


def study(r: int, reference: str, jobs: int) -> tuple[bool, int]:
    s = PersonalizationStudy(reference=reference, n_seeds=2, n_folds=3, attr_layers=2,
                             random_state=r, **NET)
    if reference == "generic":
        s = PersonalizationStudy(models=("generic", "decoupled", "conditional-bias"),
                                 reference="generic", n_seeds=2, n_folds=3, attr_layers=2,
                                 random_state=r, **NET)
    res = run_study(s, make_null_cohort(400, random_state=r), RunOptions(n_jobs=jobs))
    dep = res.results[(res.results.role == "guard") & (res.results.metric == "deployed")]
    ref = res.results.loc[res.results.metric == "reference", "model"].iloc[0]
    won = dep[dep["model"] != ref]
    acc = res.summary[res.summary.metric == "accuracy"].set_index(["subgroup", "model"])
    right = sum(acc.loc[(sub, "guarded"), "gain"] > 0 for sub in won["subgroup"])
    return len(won) > 0, right


def report(name: str, outcomes: list[tuple[bool, int]], seconds: float) -> None:
    hits = sum(h for h, _ in outcomes)
    n = len(outcomes)
    ci = stats.binomtest(hits, n).proportion_ci(0.95, method="exact")
    p = stats.binomtest(hits, n, 0.05, alternative="greater").pvalue
    groups = sum(r for _, r in outcomes)
    print(f"| {name} | {hits}/{n} | {100 * ci.low:.0f}-{100 * ci.high:.0f} % | {p:.3f} | "
          f"{groups} | {seconds / n:.2f} s |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--only", default="twin,twin+1,generic,best")
    a = ap.parse_args()
    print("| scenario | cohorts certified | exact 95 % CI | binomial p (H0 rate <= 0.05) "
          "| certified groups better on test rows | time per cohort |")
    print("|---|---|---|---|---|---|")
    runs = {"twin": lambda r: twin(r, 16), "twin+1": lambda r: twin(r, 17),
            "generic": lambda r: study(r, "generic", a.jobs),
            "best": lambda r: study(r, "best", a.jobs)}
    for name in a.only.split(","):
        t = time.perf_counter()
        out = [runs[name](r) for r in range(a.reps)]
        report(name, out, time.perf_counter() - t)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
