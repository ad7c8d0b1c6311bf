"""Fair use of group attributes (issue 28): the audit's error rate on null cohorts and its
power on the planted interaction cohort, fitting included.

Usage:
    python benchmarks/fair_use.py [--reps 100] [--planted 10]

* null: ``make_null_cohort(800)`` (site x sex, 6 subgroups, the attributes are noise),
  logistic regression blind vs aware (intersectional), 100 replications: the share of
  cohorts where some group is certified as gaining (rationality "holds" or "helps" against
  every blind model).  Target: not significantly above alpha = 0.05.
* planted: ``make_interaction_cohort(6000, shift=4)`` (+4 logits for old women only),
  one-hot and intersectional encodings: how often old women are found to gain, old men
  to be harmed (rationality violated) and to envy another group.
"""
from __future__ import annotations

import argparse
import time

from scipy import stats

from noharm.audit.fair_use import FairUseAudit
from noharm.datasets import make_interaction_cohort, make_null_cohort
from noharm.models import ReferenceClassifier


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--planted", type=int, default=10)
    a = ap.parse_args()
    fam = {"logreg": ReferenceClassifier("logreg")}
    t0, hits = time.perf_counter(), 0
    for r in range(a.reps):
        c = make_null_cohort(800, random_state=r)
        s = FairUseAudit(fam, metrics=("log-loss",), explain=False, random_state=r).fit(
            c.X, c.y, sensitive_features=c.groups).summary_
        hits += bool((s["rationality"] == "holds").any() or (s["vs_every_blind"] == "helps")
                     .any())
    p = stats.binomtest(hits, a.reps, 0.05, alternative="greater").pvalue
    ci = stats.binomtest(hits, a.reps).proportion_ci()
    print(f"null: {hits} of {a.reps} cohorts certified a gain (95 % CI {ci.low:.2f}-"
          f"{ci.high:.2f}; exact one-sided p vs 0.05 = {p:.3f}) in "
          f"{time.perf_counter() - t0:.0f} s")
    for enc in ("onehot", "intersectional"):
        t0 = time.perf_counter()
        gains = harmed = envy = other_harmed = 0
        for r in range(a.planted):
            c = make_interaction_cohort(6000, shift=4, random_state=r)
            s = FairUseAudit(fam, encoding=enc, metrics=("log-loss",), explain=False,
                             random_state=r).fit(
                c.X, c.y, sensitive_features=c.groups).summary_.set_index("group")
            gains += s.loc["old_female", "rationality"] == "holds"
            harmed += s.loc["old_male", "rationality"] == "violated"
            envy += s.loc["old_male", "envy"].startswith("envies")
            other_harmed += (s.drop(index="old_male")["rationality"] == "violated").sum()
        print(f"planted, {enc}: old_female gains {gains}/{a.planted}, old_male harmed "
              f"{harmed}/{a.planted}, old_male envies {envy}/{a.planted}, other groups "
              f"harmed {other_harmed} times ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
