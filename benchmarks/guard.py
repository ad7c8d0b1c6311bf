"""The guard and the references (issue 13), measured in one run.

Usage:  NOHARM_DATA_DIR=../shared/data python benchmarks/guard.py [--jobs 2]

1. Cost: the Heart study with the guard and the references (generic, decoupled,
   conditional bias, logreg, hgb; held-out guard rows) against the plain study (generic,
   decoupled, conditional bias; --no-guard), one outer split each; target <= 2x.
2. Heart over 5 outer splits: per subgroup the guarded model's gain against the
   reference, its interval and verdict, and where the guard deployed personalization.
3. The planted synthetic cohort (old_female's label relationship flipped) over 5 outer
   splits: how often the guard deploys personalization per subgroup and how much of the
   best personalized gain it keeps there.
"""
from __future__ import annotations

import argparse
import time

from noharm.datasets import load_heart, make_synthetic
from noharm.experiments import PersonalizationStudy, RunOptions, run_study

PLAIN = ("generic", "decoupled", "conditional-bias")


def timed(study, cohort, jobs):
    t = time.perf_counter()
    res = run_study(study, cohort, RunOptions(n_jobs=jobs))
    return res, time.perf_counter() - t


def verdicts(res, title):
    s = res.summary[res.summary.metric == "accuracy"]
    g = res.results[(res.results.role == "guard") & (res.results.metric == "deployed")]
    n = g.outer_split.nunique()
    print(f"\n### {title}\n")
    print("| subgroup | n_test | reference acc % | guarded gain (points) [95 % CI] | verdict "
          "| best personalized gain | deployed personalization |")
    print("|---|---|---|---|---|---|---|")
    for sub, d in s.groupby("subgroup", sort=False):
        d = d.set_index("model")
        gd, ref = d.loc["guarded"], d.loc["reference"]
        best = max(d.loc[m, "gain"] for m in ("decoupled", "conditional-bias") if m in d.index)
        dep = g[g.subgroup == sub] if sub != "all" else g
        share = (~dep.model.isin(["generic", "logreg", "hgb"])).sum()
        total = len(dep)
        print(f"| {sub} | {gd['n_test']:g} | {100 * ref['mean']:.1f} | {100 * gd['gain']:+.1f} "
              f"[{100 * gd['gain_ci_low']:+.1f}, {100 * gd['gain_ci_high']:+.1f}] | "
              f"{gd['verdict']} | {100 * best:+.1f} | {share}/{total if sub == 'all' else n} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    heart = load_heart()
    _, plain = timed(PersonalizationStudy(models=PLAIN, guard=False), heart, args.jobs)
    _, guarded = timed(PersonalizationStudy(), heart, args.jobs)
    print(f"# Heart, one outer split, --jobs {args.jobs}")
    print(f"plain study (generic, decoupled, conditional bias; no guard): {plain:.1f} s")
    print(f"with guard + references (+ logreg, hgb; held-out guard rows): {guarded:.1f} s -> "
          f"{guarded / plain:.2f}x (target <= 2x)")
    res, t5 = timed(PersonalizationStudy(outer_splits=5), heart, args.jobs)
    verdicts(res, f"Heart, 5 outer splits ({t5:.0f} s); reference chosen per split: "
             + ", ".join(f"{m} {c}" for m, c in res.results.loc[
                 res.results.metric == "reference", "model"].value_counts().items()))
    syn = make_synthetic(n_samples=800, random_state=0)
    res, ts = timed(PersonalizationStudy(outer_splits=5), syn, args.jobs)
    verdicts(res, f"planted synthetic cohort (800 rows), 5 outer splits ({ts:.0f} s)")


if __name__ == "__main__":
    main()
