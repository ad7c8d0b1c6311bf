"""MIMIC-III extraction at scale, and the protocol on a MIMIC-size cohort (issue 7).

Usage:
    python benchmarks/mimic_extraction.py extract [--rows 50000000] [--dir /tmp/mimic-bench]
    python benchmarks/mimic_extraction.py protocol [--jobs 2]

``extract`` writes a synthetic MIMIC-III v1.4 folder in the official column layout
(PATIENTS, ADMISSIONS, ICUSTAYS: 15,000 adult first stays of 72 h; CHARTEVENTS with
``--rows`` rows, 40 item ids of which 18 are used, 10 % of events outside the 48 h
window; LABEVENTS 2 M rows; OUTPUTEVENTS 0.5 M rows), then runs
``noharm data mimic3`` on it in a child process and prints the wall time, CHARTEVENTS
rows per second (all input rows / wall time) and the child's peak RSS
(``getrusage(RUSAGE_CHILDREN).ru_maxrss``).  Targets (issue 7): >= 2 M rows/s, < 4 GB.

``protocol`` times the seed protocol (generic + decoupled + conditional bias, 5 seeds x
5 folds) on a 15,000 x 600 synthetic cohort (target DESIGN §7: <= 5 minutes on 2 cores).
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

N_STAYS = 15_000
CHART_IDS = [211, 220045, 51, 220050, 8368, 220051, 52, 220052, 615, 220210, 678, 223761,
             646, 220277, 807, 220621, 198, 220739]   # 18 ids the cohort uses
OTHER_IDS = list(range(900_000, 900_022))             # 22 ids it must skip
LAB_IDS = [50931, 50912, 51006, 50983, 50971, 50902, 50882, 51221, 51222, 51301, 51265,
           50813]


def write_mimic(d: Path, rows: int) -> None:
    import duckdb
    d.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(config={"threads": 2, "preserve_insertion_order": True})
    ids = CHART_IDS + OTHER_IDS
    con.execute(f"CREATE TABLE ids AS SELECT unnest({ids}) AS itemid, "
                "generate_subscripts(" + str(ids) + ", 1) - 1 AS k")
    base = "TIMESTAMP '2150-01-01 00:00:00'"
    con.execute(f"""CREATE TABLE icu AS SELECT i + 1 AS subject_id, 100000 + i AS hadm_id,
        200000 + i AS icustay_id, {base} + to_hours(i * 3) AS intime,
        {base} + to_hours(i * 3 + 72) AS outtime FROM range({N_STAYS}) t(i)""")
    copy = "(HEADER, DELIMITER ',')"
    con.execute(f"""COPY (SELECT i.subject_id AS row_id, subject_id,
        CASE WHEN subject_id % 2 = 0 THEN 'F' ELSE 'M' END AS gender,
        intime - to_days(CAST(365.25 * (30 + subject_id % 60) AS INTEGER)) AS dob,
        NULL AS dod, NULL AS dod_hosp, NULL AS dod_ssn, 0 AS expire_flag FROM icu i)
        TO '{d}/PATIENTS.csv' {copy}""")
    con.execute(f"""COPY (SELECT subject_id AS row_id, subject_id, hadm_id, intime AS admittime,
        outtime AS dischtime, NULL AS deathtime, 'EMERGENCY' AS admission_type,
        'EMERGENCY ROOM ADMIT' AS admission_location, 'HOME' AS discharge_location,
        'Medicare' AS insurance, NULL AS language, NULL AS religion, NULL AS marital_status,
        'WHITE' AS ethnicity, NULL AS edregtime, NULL AS edouttime, 'X' AS diagnosis,
        CAST(hash(subject_id) % 10 = 0 AS INTEGER) AS hospital_expire_flag,
        1 AS has_chartevents_data FROM icu) TO '{d}/ADMISSIONS.csv' {copy}""")
    con.execute(f"""COPY (SELECT subject_id AS row_id, subject_id, hadm_id, icustay_id,
        'metavision' AS dbsource, 'MICU' AS first_careunit, 'MICU' AS last_careunit,
        1 AS first_wardid, 1 AS last_wardid, intime, outtime, 3.0 AS los FROM icu)
        TO '{d}/ICUSTAYS.csv' {copy}""")
    # CHARTEVENTS: row r belongs to stay r % N_STAYS, at minute (r // N_STAYS) of a 53 h span
    per = -(-rows // N_STAYS)
    con.execute(f"""COPY (SELECT r + 1 AS row_id, i.subject_id, i.hadm_id, i.icustay_id,
        ids.itemid, i.intime + to_minutes(CAST((r // {N_STAYS}) * 3180 // {per} AS BIGINT))
            AS charttime,
        i.intime + to_minutes(CAST((r // {N_STAYS}) * 3180 // {per} AS BIGINT) + 5) AS storetime,
        17 AS cgid, CAST(round(60 + (hash(r) % 4000) / 100.0, 2) AS VARCHAR) AS value,
        round(60 + (hash(r) % 4000) / 100.0, 2) AS valuenum, 'bpm' AS valueuom,
        0 AS warning, 0 AS error, NULL AS resultstatus, NULL AS stopped
        FROM range({rows}) t(r)
        JOIN icu i ON i.icustay_id = 200000 + r % {N_STAYS}
        JOIN ids ON ids.k = hash(r + 7) % {len(ids)})
        TO '{d}/CHARTEVENTS.csv' {copy}""")
    con.execute(f"""COPY (SELECT r + 1 AS row_id, i.subject_id, i.hadm_id, l.itemid,
        i.intime + to_minutes(CAST(hash(r) % 3600 AS BIGINT) - 360) AS charttime,
        CAST(1 + (hash(r + 1) % 100) / 10.0 AS VARCHAR) AS value,
        1 + (hash(r + 1) % 100) / 10.0 AS valuenum, 'mg/dL' AS valueuom, NULL AS flag
        FROM range(2000000) t(r) JOIN icu i ON i.icustay_id = 200000 + r % {N_STAYS}
        JOIN (SELECT unnest({LAB_IDS}) AS itemid,
              generate_subscripts({LAB_IDS}, 1) - 1 AS k) l ON l.k = hash(r) % {len(LAB_IDS)})
        TO '{d}/LABEVENTS.csv' {copy}""")
    con.execute(f"""COPY (SELECT r + 1 AS row_id, i.subject_id, i.hadm_id, i.icustay_id,
        i.intime + to_minutes(CAST(hash(r) % 3600 AS BIGINT)) AS charttime, 226559 AS itemid,
        CAST(hash(r) % 300 AS DOUBLE) AS value, 'ml' AS valueuom, NULL AS storetime,
        1 AS cgid, NULL AS stopped, NULL AS newbottle, NULL AS iserror
        FROM range(500000) t(r) JOIN icu i ON i.icustay_id = 200000 + r % {N_STAYS})
        TO '{d}/OUTPUTEVENTS.csv' {copy}""")
    con.close()


def extract(args: argparse.Namespace) -> None:
    d = Path(args.dir)
    chart = d / "CHARTEVENTS.csv"
    if not chart.exists() or args.regenerate:
        t = time.perf_counter()
        write_mimic(d, args.rows)
        print(f"generated {d} in {time.perf_counter() - t:.1f} s")
    size = chart.stat().st_size
    with open(chart, "rb") as fh:
        n_rows = sum(buf.count(b"\n") for buf in iter(lambda: fh.read(1 << 24), b"")) - 1
    print(f"CHARTEVENTS.csv: {n_rows:,} rows, {size / 1e9:.2f} GB")
    out = d / "cohort.parquet"
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "noharm.cli", "data", "mimic3", "--mimic-dir",
                    str(d), "--out", str(out), "--overwrite", "--quiet",
                    "--memory-limit", args.memory_limit], check=True)
    wall = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 ** 2   # GiB
    print(f"extraction wall {wall:.1f} s; CHARTEVENTS {n_rows / wall / 1e6:.2f} M rows/s "
          f"over the whole extraction (target >= 2); peak RSS {peak:.2f} GiB (target < 4)")


def protocol(args: argparse.Namespace) -> None:
    from noharm.datasets import make_synthetic
    from noharm.experiments import PersonalizationStudy, RunOptions, run_study
    cohort = make_synthetic(n_samples=15_000, n_features=600, random_state=0)
    study = PersonalizationStudy(models=("generic", "decoupled", "conditional-bias"))
    t = time.perf_counter()
    res = run_study(study, cohort, RunOptions(n_jobs=args.jobs), progress=print)
    wall = time.perf_counter() - t
    print(f"15,000 x 600 protocol (3 models x 25 runs, --jobs {args.jobs}): {wall:.1f} s "
          f"(target <= 300 s); per-model task seconds: "
          + ", ".join(f"{k} {v:.1f}" for k, v in res.timings.items()))
    s = res.summary
    s = s[(s["subgroup"] == "all") & s["metric"].isin(["accuracy", "auroc"])]
    print(s.pivot(index="model", columns="metric", values="mean").round(3).to_string())


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("extract")
    e.add_argument("--rows", type=int, default=50_000_000)
    e.add_argument("--dir", default="/tmp/mimic-bench")
    e.add_argument("--memory-limit", default="2GB")
    e.add_argument("--regenerate", action="store_true")
    p = sub.add_parser("protocol")
    p.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    extract(args) if args.cmd == "extract" else protocol(args)


if __name__ == "__main__":
    main()
