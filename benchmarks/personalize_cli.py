"""`noharm personalize --dataset heart` wall time from the shell (issue 12: <= 10 s on 2 cores).

Usage:  NOHARM_DATA_DIR=../shared/data python benchmarks/personalize_cli.py [--repeat 3]

Runs the command as a user does (a fresh process, imports included) with the default
--jobs (the cores available) and with --jobs 1, in one run, and prints the median wall
times, their ratio, the per-model task seconds of the last run, whether the two give
byte-identical results.csv, and the median wall time of a fresh process that only imports
what the command imports before its first task (the part no worker count can shorten).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def wall(args: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "noharm.cli", *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


IMPORTS = ("import noharm.cli.personalize, noharm.experiments.runner, "
           "noharm.experiments.studies.personalization")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        times: dict[str, list[float]] = {"default": [], "jobs1": [], "imports": []}
        for r in range(args.repeat):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", IMPORTS], check=True)
            times["imports"].append(time.perf_counter() - t)
            for kind, extra in (("default", []), ("jobs1", ["--jobs", "1"])):
                out = Path(tmp) / f"{kind}{r}"
                times[kind].append(wall(["personalize", "--dataset", "heart", "--quiet",
                                         "--output", str(out), *extra]))
        same = all((Path(tmp) / f"default{r}" / "results.csv").read_bytes()
                   == (Path(tmp) / "jobs10" / "results.csv").read_bytes()
                   for r in range(args.repeat))
        timings = json.loads((Path(tmp) / "default0" / "config.json").read_text())["timings_s"]
    d, one = statistics.median(times["default"]), statistics.median(times["jobs1"])
    print(f"# noharm personalize --dataset heart ({cores} cores; generic, decoupled, "
          "conditional bias, logreg, hgb; 25 cross-fitted runs each, guard on)")
    print(f"default --jobs ({cores}): median {d:.1f} s over {args.repeat} "
          f"({', '.join(f'{t:.1f}' for t in times['default'])}); target <= 10 s -> "
          f"{'OK' if d <= 10 else 'MISSED'}")
    print(f"--jobs 1: median {one:.1f} s; ratio jobs1/default = {one / d:.2f}")
    print(f"imports alone (fresh process): median {statistics.median(times['imports']):.1f} s")
    print("task seconds per model: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    print(f"results.csv identical across runs and --jobs: {same}")


if __name__ == "__main__":
    main()
