"""In-hospital mortality from raw MIMIC-III v1.4 files (the seed study's Table 2 data).

:func:`build_mimic3_cohort` reads the CSV or CSV.gz tables with DuckDB (embedded):
the item-id filter and the 48-hour window are part of the scan query, every
aggregate is computed while the file streams through, and only the per-stay
aggregates are kept, so memory stays bounded (``memory_limit``) whatever the size
of CHARTEVENTS.  The result is a Parquet file.

Cohort (counts of every step are reported):

1. the first ICU stay of each patient (earliest ``intime``);
2. adults: age at ICU admission >= 18 (ages over 89, shifted to ~300 years in MIMIC,
   are set to 91.4, the median age of that group);
3. ICU length of stay > 48 hours (``outtime - intime``).

Label: ``hospital_expire_flag`` of that admission.

Features (first 48 hours): for each concept of :data:`~noharm.datasets.mimic3_items.CONCEPTS`
(vitals from CHARTEVENTS between ``intime`` and ``intime + 48 h``, labs from LABEVENTS
of the admission between ``intime - 6 h`` and ``intime + 48 h``, urine output from
OUTPUTEVENTS in the ICU window): count, mean, min, max, sd, first, last and slope
(per hour, least squares against hours since ``intime``), the 48-hour total for urine,
and a missingness indicator; demographics: age, sex, ethnicity (5 groups), insurance,
admission type.  Events strictly after hour 48 never enter (``charttime <= intime +
48 h``).  Rows flagged as errors (CHARTEVENTS ``error = 1``, OUTPUTEVENTS ``iserror =
1``), empty values and values outside each concept's plausible range are dropped.

:func:`load_mimic3_mortality` turns that Parquet file into a :class:`Cohort` with the
Heart groups (age young < 60 <= old, sex).  Missing aggregates stay missing (NaN): every
model fills them with medians of its own training rows (never with test rows), and the
missingness indicators keep the information.
"""
from __future__ import annotations

import csv
import gzip
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DatasetError
from ._fetch import cache_dir
from .cohort import Cohort
from .mimic3_items import CONCEPTS, F_TO_C, STATS

#: Columns each table needs (name -> DuckDB type); other columns are read as text.
REQUIRED = {
    "PATIENTS": {"subject_id": "BIGINT", "gender": "VARCHAR", "dob": "TIMESTAMP"},
    "ADMISSIONS": {"subject_id": "BIGINT", "hadm_id": "BIGINT", "admission_type": "VARCHAR",
                   "insurance": "VARCHAR", "ethnicity": "VARCHAR",
                   "hospital_expire_flag": "INTEGER"},
    "ICUSTAYS": {"subject_id": "BIGINT", "hadm_id": "BIGINT", "icustay_id": "BIGINT",
                 "intime": "TIMESTAMP", "outtime": "TIMESTAMP"},
    "CHARTEVENTS": {"icustay_id": "BIGINT", "itemid": "INTEGER", "charttime": "TIMESTAMP",
                    "valuenum": "DOUBLE"},
    "LABEVENTS": {"hadm_id": "BIGINT", "itemid": "INTEGER", "charttime": "TIMESTAMP",
                  "valuenum": "DOUBLE"},
    "OUTPUTEVENTS": {"icustay_id": "BIGINT", "itemid": "INTEGER", "charttime": "TIMESTAMP",
                     "value": "DOUBLE"},
}
OPTIONAL = {"CHARTEVENTS": {"error": "INTEGER"}, "OUTPUTEVENTS": {"iserror": "INTEGER"}}
WINDOW_HOURS = 48
LAB_LOOKBACK_HOURS = 6
OLD_AGE = 91.4
ETHNICITY = {"white": "WHITE%", "black": "BLACK%", "hispanic": "HISPANIC%", "asian": "ASIAN%"}
INSURANCE = ("Medicare", "Medicaid", "Private", "Government", "Self Pay")
ADMISSION_TYPES = ("EMERGENCY", "ELECTIVE", "URGENT")


class MimicError(DatasetError):
    """A MIMIC-III directory or table is missing, incomplete or unreadable."""


@dataclass
class ExtractionReport:
    """What :func:`build_mimic3_cohort` did."""

    out: Path
    counts: dict[str, int]
    n_features: int
    seconds: dict[str, float] = field(default_factory=dict)


# -- locating and checking tables --------------------------------------------------------

def find_table(mimic_dir: Path, name: str) -> Path:
    """``NAME.csv`` or ``NAME.csv.gz`` in ``mimic_dir``, any case (plain CSV preferred)."""
    wanted = (f"{name.lower()}.csv", f"{name.lower()}.csv.gz")
    hits = sorted((p for p in mimic_dir.iterdir() if p.name.lower() in wanted and p.is_file()),
                  key=lambda p: (p.name.lower().endswith(".gz"), p.name))
    if not hits:
        raise MimicError(f"MIMIC-III table {name} is missing from {mimic_dir} (looked for "
                         f"{name}.csv or {name}.csv.gz, any case); copy it there.")
    return hits[0]


def read_header(path: Path) -> list[str]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", newline="", encoding="utf-8") as fh:
            return next(csv.reader(fh))
    except (OSError, StopIteration, UnicodeDecodeError, csv.Error) as exc:
        raise MimicError(f"cannot read the header of {path} ({exc or 'empty file'}); is it "
                         "an (optionally gzipped) MIMIC-III CSV?") from None


def _scan(path: Path, name: str) -> str:
    """A DuckDB ``read_csv`` over ``path`` with every column typed (no sniffing)."""
    header = read_header(path)
    lower = {h.lower(): h for h in header}
    missing = [c for c in REQUIRED[name] if c not in lower]
    if missing:
        raise MimicError(f"{path.name} lacks the column(s) {', '.join(missing)} that MIMIC-III "
                         f"v1.4's {name} has; is it the right file?")
    types = {**REQUIRED[name], **OPTIONAL.get(name, {})}
    cols = ", ".join(f"'{h}': '{types.get(h.lower(), 'VARCHAR')}'" for h in header)
    return (f"read_csv('{_sql_str(path)}', header = true, auto_detect = false, delim = ',', "
            f"quote = '\"', escape = '\"', columns = {{{cols}}})")


def _sql_str(path: Path) -> str:
    return str(path).replace("'", "''")


def check_mimic_dir(mimic_dir: str | os.PathLike) -> dict[str, Path]:
    """The path of every table the cohort needs; a clear error when one is missing."""
    d = Path(mimic_dir)
    if not d.is_dir():
        raise MimicError(f"--mimic-dir {d} is not a directory; give the folder holding the "
                         "MIMIC-III v1.4 CSV files.")
    names = {p.name.lower() for p in d.iterdir()}
    if not any(f"{n.lower()}{ext}" in names for n in ("PATIENTS", "ADMISSIONS", "ICUSTAYS")
               for ext in (".csv", ".csv.gz")):
        raise MimicError(f"{d} is not a MIMIC-III directory (no PATIENTS, ADMISSIONS or "
                         "ICUSTAYS table as .csv or .csv.gz); give the folder of the "
                         "MIMIC-III v1.4 files.")
    return {n: find_table(d, n) for n in REQUIRED}


# -- the extraction ----------------------------------------------------------------------

def _items_sql() -> str:
    rows = []
    for c in CONCEPTS:
        for i in c.itemids:
            scale, shift = F_TO_C if i in c.converted else (1.0, 0.0)
            rows.append(f"({i}, '{c.name}', {scale!r}, {shift!r}, {c.low!r}, {c.high!r})")
    return ("CREATE TEMP TABLE items AS SELECT * FROM (VALUES " + ", ".join(rows)
            + ") t(itemid, concept, scale, shift, low, high)")


def _cohort_sql(t: dict[str, str]) -> str:
    eth = " ".join(f"WHEN upper(a.ethnicity) LIKE '{p}' THEN '{k}'"
                   for k, p in ETHNICITY.items())
    return f"""
    CREATE TEMP TABLE stays AS
    SELECT i.subject_id AS subject_id, i.hadm_id AS hadm_id, i.icustay_id AS icustay_id,
           i.intime AS intime, i.outtime AS outtime,
           row_number() OVER (PARTITION BY i.subject_id ORDER BY i.intime, i.icustay_id) AS seq,
           date_diff('second', i.intime, i.outtime) / 3600.0 AS los_hours,
           date_diff('day', p.dob, i.intime) / 365.242 AS raw_age,
           upper(p.gender) AS gender,
           a.admission_type AS admission_type, a.insurance AS insurance,
           CASE {eth} ELSE 'other' END AS ethnicity,
           a.hospital_expire_flag AS mortality
    FROM {t['ICUSTAYS']} i
    JOIN {t['PATIENTS']} p ON p.subject_id = i.subject_id
    JOIN {t['ADMISSIONS']} a ON a.hadm_id = i.hadm_id
    WHERE i.intime IS NOT NULL AND i.outtime IS NOT NULL"""


_AGGS = """count(*) AS n, avg(v) AS mean, min(v) AS min, max(v) AS max,
           stddev_samp(v) AS sd, arg_min(v, {'t': t, 'v': v}) AS first,
           arg_max(v, {'t': t, 'v': -v}) AS last, regr_slope(v, h) AS slope, sum(v) AS total"""


def _events_sql(table: str, scan: str, has_error: bool) -> str:
    """Per (stay, concept) aggregates of one event table, window and items in the scan."""
    ids = sorted({i for c in CONCEPTS if c.table == table for i in c.itemids})
    id_list = ", ".join(map(str, ids))
    if table == "LABEVENTS":
        key, value = "hadm_id", "valuenum"
        low = f"c.intime - INTERVAL {LAB_LOOKBACK_HOURS} HOUR"
    else:
        key, value = "icustay_id", "valuenum" if table == "CHARTEVENTS" else "value"
        low = "c.intime"
    err = ""
    if has_error:
        err = f" AND coalesce(e.{'error' if table == 'CHARTEVENTS' else 'iserror'}, 0) <> 1"
    return f"""
    SELECT icustay_id, concept, {_AGGS} FROM (
        SELECT c.icustay_id, it.concept, e.{value} * it.scale + it.shift AS v, e.charttime AS t,
               date_diff('second', c.intime, e.charttime) / 3600.0 AS h, it.low, it.high
        FROM {scan} e
        JOIN cohort c ON e.{key} = c.{key}
        JOIN items it ON e.itemid = it.itemid
        WHERE e.itemid IN ({id_list}) AND e.{value} IS NOT NULL
          AND e.charttime >= {low}
          AND e.charttime <= c.intime + INTERVAL {WINDOW_HOURS} HOUR{err}
    ) WHERE v BETWEEN low AND high
    GROUP BY icustay_id, concept"""


def _run(con, sql: str, label: str, progress: Callable[[str, float], None] | None) -> None:
    """Execute ``sql``, reporting DuckDB's query progress (0-100) every 0.2 s."""
    if progress is None:
        con.execute(sql)
        return
    error: list[BaseException] = []

    def work() -> None:
        try:
            con.execute(sql)
        except BaseException as exc:  # re-raised in the caller's thread
            error.append(exc)

    th = threading.Thread(target=work, daemon=True)
    th.start()
    while th.is_alive():
        th.join(0.2)
        try:
            pct = con.query_progress()
        except Exception:
            pct = -1
        if pct is not None and pct >= 0:
            progress(label, float(pct))
    if error:
        raise error[0]
    progress(label, 100.0)


def build_mimic3_cohort(mimic_dir: str | os.PathLike, out: str | os.PathLike, *,
                        memory_limit: str = "2GB", threads: int | None = None,
                        progress: Callable[[str, float], None] | None = None
                        ) -> ExtractionReport:
    """Build the in-hospital mortality cohort from raw MIMIC-III v1.4 files.

    Parameters
    ----------
    mimic_dir
        Folder with PATIENTS, ADMISSIONS, ICUSTAYS, CHARTEVENTS, LABEVENTS and
        OUTPUTEVENTS as ``.csv`` or ``.csv.gz`` (upper- or lower-case names and headers).
    out
        Parquet file to write (one row per ICU stay).
    memory_limit
        DuckDB's memory limit; larger intermediate results spill to a temporary folder
        beside ``out``.
    threads
        DuckDB threads (default: all cores).
    progress
        ``progress(table, percent)`` while each table is scanned.

    Raises
    ------
    MimicError
        A table or one of its columns is missing, or the folder is not MIMIC-III.
    """
    import duckdb

    tables = check_mimic_dir(mimic_dir)
    scans = {n: _scan(p, n) for n, p in tables.items()}
    has_error = {n: any(h.lower() in OPTIONAL.get(n, {}) for h in read_header(p))
                 for n, p in tables.items()}
    out = Path(out)
    if out.suffix.lower() != ".parquet":
        raise MimicError(f"--out {out} must end in .parquet.")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.duckdb-tmp"
    con = duckdb.connect(config={"memory_limit": memory_limit, "threads": threads or
                                 os.cpu_count() or 1, "temp_directory": str(tmp),
                                 "preserve_insertion_order": False})
    seconds: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        con.execute(_items_sql())
        try:
            _run(con, _cohort_sql(scans), "ICUSTAYS+PATIENTS+ADMISSIONS", progress)
        except duckdb.Error as exc:
            raise MimicError(f"cannot read the cohort tables: {exc}") from None
        counts = {"icu_stays": _one(con, "SELECT count(*) FROM stays"),
                  "patients": _one(con, "SELECT count(DISTINCT subject_id) FROM stays")}
        con.execute(f"""CREATE TEMP TABLE cohort AS SELECT *,
                        CASE WHEN raw_age > 89 THEN {OLD_AGE} ELSE raw_age END AS age
                        FROM stays WHERE seq = 1""")
        counts["first_stays"] = _one(con, "SELECT count(*) FROM cohort")
        con.execute("DELETE FROM cohort WHERE age < 18")
        counts["adults"] = _one(con, "SELECT count(*) FROM cohort")
        con.execute(f"DELETE FROM cohort WHERE los_hours <= {WINDOW_HOURS}")
        counts["los_over_48h"] = _one(con, "SELECT count(*) FROM cohort")
        seconds["cohort"] = time.perf_counter() - t0
        parts = []
        # Keep the written join order: the event file streams through (probe side) and
        # the small cohort and item tables are the hash-join build sides.  DuckDB cannot
        # estimate a CSV's size and would otherwise build a hash table of the events.
        con.execute("SET disabled_optimizers = 'join_order,build_side_probe_side'")
        for name in ("CHARTEVENTS", "LABEVENTS", "OUTPUTEVENTS"):
            t0 = time.perf_counter()
            sql = f"CREATE TEMP TABLE agg_{name} AS " + _events_sql(name, scans[name],
                                                                      has_error[name])
            try:
                _run(con, sql, name, progress)
            except duckdb.Error as exc:
                raise MimicError(f"cannot read {tables[name].name}: {exc}") from None
            seconds[name] = time.perf_counter() - t0
            parts.append(con.execute(f"SELECT * FROM agg_{name}").df())
        cohort = con.execute("SELECT * FROM cohort ORDER BY icustay_id").df()
    finally:
        con.close()
        _remove_tree(tmp)
    frame = _assemble(cohort, pd.concat(parts, ignore_index=True))
    counts["with_mortality"] = int(frame["mortality"].sum())
    partial = out.with_name(f".{out.name}.partial")
    frame.to_parquet(partial, index=False)
    partial.replace(out)                 # never a half-written cohort file
    n_feat = len(feature_columns(frame))
    return ExtractionReport(out=out, counts=counts, n_features=n_feat, seconds=seconds)


def _one(con, sql: str) -> int:
    return int(con.execute(sql).fetchone()[0])


def _remove_tree(path: Path) -> None:
    if path.is_dir():
        for p in sorted(path.rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        path.rmdir()


ID_COLUMNS = ("subject_id", "hadm_id", "icustay_id")


def _assemble(cohort: pd.DataFrame, agg: pd.DataFrame) -> pd.DataFrame:
    """One row per stay: ids, label, group columns, demographics and 48-hour features."""
    base = pd.DataFrame({
        "subject_id": cohort["subject_id"].astype("int64"),
        "hadm_id": cohort["hadm_id"].astype("int64"),
        "icustay_id": cohort["icustay_id"].astype("int64"),
        "mortality": cohort["mortality"].astype("int64"),
        "age": cohort["age"].astype(float).round(6),
        "sex": (cohort["gender"] == "M").astype("int64"),
    })
    for k in (*ETHNICITY, "other"):
        base[f"ethnicity_{k}"] = (cohort["ethnicity"] == k).astype("int64")
    for v in INSURANCE:
        base[f"insurance_{v.lower().replace(' ', '_')}"] = (cohort["insurance"] == v).astype(
            "int64")
    for v in ADMISSION_TYPES:
        base[f"admission_{v.lower()}"] = (cohort["admission_type"] == v).astype("int64")
    agg = agg.set_index(["icustay_id", "concept"])
    cols = {}
    for c in CONCEPTS:
        stats = list(STATS) + (["total"] if c.total else [])
        for s in stats:
            src = {"count": "n"}.get(s, s)
            try:
                values = agg[src].xs(c.name, level="concept")
            except KeyError:
                values = pd.Series(dtype=float)
            col = values.reindex(base["icustay_id"]).to_numpy(dtype=float)
            if s == "count":
                col = np.nan_to_num(col, nan=0.0)
            cols[f"{c.name}_{s}"] = np.round(col, 9)
        cols[f"{c.name}_missing"] = (cols[f"{c.name}_count"] == 0).astype(np.int64)
    return pd.concat([base, pd.DataFrame(cols, index=base.index)], axis=1)


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The model inputs of a cohort frame (everything but ids and the label)."""
    return [c for c in frame.columns if c not in (*ID_COLUMNS, "mortality")]


# -- loading the cohort --------------------------------------------------------------------

def load_mimic3_mortality(path: str | os.PathLike | None = None) -> Cohort:
    """The Parquet file of :func:`build_mimic3_cohort` as a :class:`Cohort`.

    ``path`` defaults to ``mimic3/cohort.parquet`` under ``$NOHARM_DATA_DIR``, then under
    the user cache (see :mod:`noharm.datasets._fetch`).  MIMIC-III needs
    credentialed access, so nothing is downloaded: build the file with
    ``noharm data mimic3 --mimic-dir DIR --out cohort.parquet``.
    """
    if path is None:
        roots = [Path(r) for r in (os.environ.get("NOHARM_DATA_DIR"),) if r] + [cache_dir()]
        found = [r / "mimic3" / "cohort.parquet" for r in roots
                 if (r / "mimic3" / "cohort.parquet").is_file()]
        path = found[0] if found else None
    if path is None or not Path(path).is_file():
        raise DatasetError(f"no MIMIC-III cohort file{f' at {path}' if path else ''}; build "
                           "it from your credentialed MIMIC-III v1.4 files with `noharm data "
                           "mimic3 --mimic-dir DIR --out cohort.parquet` and pass it with "
                           "--data cohort.parquet.")
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types
        raise DatasetError(f"cannot read {path} as Parquet ({exc}).") from None
    need = {"mortality", "age", "sex", *ID_COLUMNS}
    if not need <= set(frame.columns):
        raise DatasetError(f"{path} is not a noharm MIMIC-III cohort (lacks "
                           f"{', '.join(sorted(need - set(frame.columns)))}); build it with "
                           "`noharm data mimic3`.")
    X = frame[feature_columns(frame)].astype(np.float32)     # gaps stay NaN: each model
                                                              # imputes from its training rows
    empty = [str(c) for c in X.columns[X.isna().all()]]     # never measured in this cohort
    X = X.drop(columns=empty)
    groups = pd.DataFrame({"age": np.where(frame["age"] < 60, "young", "old"),
                           "sex": np.where(frame["sex"] == 1, "male", "female")})
    return Cohort(X=X.reset_index(drop=True), y=frame["mortality"].astype(int).rename("y"),
                  groups=groups, meta={"name": "mimic3-mortality", "source": str(path),
                                        "target": "hospital_expire_flag",
                                        "groups": "age young<60<=old x sex",
                                        "dropped_empty_columns": empty},
                  split_by=frame["subject_id"].reset_index(drop=True))
