"""Time the full Heart protocol (DESIGN §3, §7) and print the table beside the paper's.

Usage:  NOHARM_DATA_DIR=../shared/data python benchmarks/heart_protocol.py [--jobs 2]

Prints, measured in this one run:
  * wall time of the protocol (generic + decoupled + conditional bias, 25 runs each)
    with --jobs processes, against the 15 s target;
  * per-model breakdown (sequential, one process) and the batched-vs-sequential ratio
    for the generic model (25 members as one ensemble vs 25 single fits);
  * the Heart accuracy table next to the paper's Table 1.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from noharm.datasets import load_heart
from noharm.experiments import PersonalizationStudy, RunOptions, run_study
from noharm.models import GenericClassifier

PAPER = {  # Table 1 of the seed paper, accuracy (%) per subgroup
    "conditional-bias": {"old_female": 64.50, "old_male": 61.39, "young_female": 84.31,
                         "young_male": 76.03},
    "decoupled": {"old_female": 52.5, "old_male": 69.1, "young_female": 76.7,
                  "young_male": 54.7},
    "generic": {"old_female": 44.00, "old_male": 54.55, "young_female": 68.19,
                "young_male": 69.96},
}
MODELS = ("generic", "decoupled", "conditional-bias")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--outer-splits", type=int, default=1)
    args = ap.parse_args()
    cohort = load_heart()

    t0 = time.perf_counter()
    study = PersonalizationStudy(models=MODELS, outer_splits=args.outer_splits)
    par = run_study(study, cohort, RunOptions(n_jobs=args.jobs))
    wall_par = time.perf_counter() - t0

    t0 = time.perf_counter()
    seq = run_study(study, cohort, RunOptions(n_jobs=1))
    wall_seq = time.perf_counter() - t0
    same = par.results.equals(seq.results)

    # batched ensemble vs 25 sequential single-member fits (generic model, same runs)
    g, y = cohort.subgroups.to_numpy(), cohort.y.to_numpy()
    runs = seq.plan.runs(0)
    kw = dict(train_indices=[r["train"] for r in runs],
              val_indices=[r["early_stop"] for r in runs],
              seeds=[r["model_seed"] for r in runs])
    t0 = time.perf_counter()
    GenericClassifier().fit_runs(cohort.X, y, sensitive_features=g, **kw)
    t_batched = time.perf_counter() - t0
    t0 = time.perf_counter()
    for tr, va, s in zip(kw["train_indices"], kw["val_indices"], kw["seeds"]):
        GenericClassifier().fit_runs(cohort.X, y, sensitive_features=g, train_indices=[tr],
                                     val_indices=[va], seeds=[s])
    t_single = time.perf_counter() - t0

    print(f"# Heart protocol ({len(runs)} runs per model, {args.outer_splits} outer split(s))")
    print(f"wall, --jobs {args.jobs}: {wall_par:.1f} s (target <= 15 s) -> "
          f"{'OK' if wall_par <= 15 else 'MISSED'}")
    print(f"wall, --jobs 1: {wall_seq:.1f} s; ratio jobs1/jobs{args.jobs} = "
          f"{wall_seq / wall_par:.2f}; identical results: {same}")
    print("per-model seconds (jobs 1): " + ", ".join(f"{m} {t:.1f}"
                                                     for m, t in seq.timings.items()))
    print(f"generic, 25 runs: batched ensemble {t_batched:.1f} s vs sequential single fits "
          f"{t_single:.1f} s -> {t_single / t_batched:.2f}x")

    s = seq.summary
    acc = s[s["metric"] == "accuracy"]
    print("\n| subgroup | n_test | " + " | ".join(f"{m} (ours)" for m in MODELS)
          + " | " + " | ".join(f"{m} (paper)" for m in MODELS) + " |")
    print("|---" * (2 + 2 * len(MODELS)) + "|")
    for grp in ["old_female", "old_male", "young_female", "young_male", "all"]:
        d = acc[acc["subgroup"] == grp].set_index("model")
        ours = [f"{100 * d.loc[m, 'mean']:.1f} ± {100 * d.loc[m, 'sd']:.1f}" for m in MODELS]
        paper = [f"{PAPER[m][grp]:.2f}" if grp in PAPER[m] else "–" for m in MODELS]
        print(f"| {grp} | {d['n_test'].iloc[0]:g} | " + " | ".join(ours) + " | "
              + " | ".join(paper) + " |")
    print("\ngain vs the reference (the generic model with the lowest log-loss on the guard "
          "predictions): paired per-run difference, accuracy points, with its 95 % interval:")
    for m in MODELS:
        d = acc[acc["model"] == m].set_index("subgroup")
        print(f"  {m}: " + ", ".join(
            f"{grp} {100 * d.loc[grp, 'gain']:+.1f} [{100 * d.loc[grp, 'gain_ci_low']:+.1f}, "
            f"{100 * d.loc[grp, 'gain_ci_high']:+.1f}]" for grp in d.index))


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
