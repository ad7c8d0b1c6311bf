"""MIMIC-III cohort extraction on the demo, with a generated CHARTEVENTS of known values."""
import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from noharm.cli import app
from noharm.datasets import load_dataset
from noharm.datasets.mimic3 import MimicError, build_mimic3_cohort, load_mimic3_mortality

runner = CliRunner()
CHART_COLUMNS = ["row_id", "subject_id", "hadm_id", "icustay_id", "itemid", "charttime",
                 "storetime", "cgid", "value", "valuenum", "valueuom", "warning", "error",
                 "resultstatus", "stopped"]
HR_VALUES = [80.0, 83.0, 81.0, 86.0, 84.0, 85.0]          # at hours 0.5, 1.5, ..., 5.5


@pytest.fixture(scope="module")
def demo(data_dir) -> Path:
    d = data_dir / "mimic3_demo"
    if not (d / "ICUSTAYS.csv").is_file():
        pytest.skip("the MIMIC-III demo is not in NOHARM_DATA_DIR")
    return d


def chartevents(icu: pd.DataFrame) -> pd.DataFrame:
    """Known vitals for every ICU stay, in the official v1.4 CHARTEVENTS layout.

    Heart rate (CareVue 211 / MetaVision 220045) takes HR_VALUES at hours 0.5..5.5;
    temperature is charted in Fahrenheit (678 / 223761) at 98.6 and 100.4 F.  Planted
    events that must be ignored: a heart rate of 150 at hour 48.5 (after the window),
    one of 10 an hour before intime, one of 200 flagged error = 1 and one of 400 (out of
    the plausible range)."""
    rows = []
    for _, s in icu.iterrows():
        mv = s["dbsource"] == "metavision"
        hr, temp = (220045, 223761) if mv else (211, 678)
        t0 = pd.Timestamp(s["intime"])
        events = [(hr, h + 0.5, v, 0) for h, v in enumerate(HR_VALUES)]
        events += [(temp, 2.0, 98.6, 0), (temp, 30.0, 100.4, 0)]
        events += [(hr, 48.5, 150.0, 0), (hr, -1.0, 10.0, 0), (hr, 3.0, 200.0, 1),
                   (hr, 4.0, 400.0, 0)]
        for item, hours, value, err in events:
            t = t0 + pd.Timedelta(hours=hours)
            rows.append({"subject_id": s["subject_id"], "hadm_id": s["hadm_id"],
                         "icustay_id": s["icustay_id"], "itemid": item,
                         "charttime": t.strftime("%Y-%m-%d %H:%M:%S"),
                         "storetime": t.strftime("%Y-%m-%d %H:%M:%S"), "cgid": 1,
                         "value": f"{value:g}", "valuenum": value,
                         "valueuom": "bpm" if item in (211, 220045) else "?F",
                         "warning": 0 if mv else None, "error": err if mv or err else None,
                         "resultstatus": None, "stopped": None})
    out = pd.DataFrame(rows)
    out.insert(0, "row_id", np.arange(1, len(out) + 1))
    return out[CHART_COLUMNS]


@pytest.fixture(scope="module")
def mimic_dir(demo, tmp_path_factory) -> Path:
    """Demo tables as shipped (lower-case headers, .csv), LABEVENTS upper-case .csv.gz."""
    d = tmp_path_factory.mktemp("mimic")
    for name in ("PATIENTS", "ADMISSIONS", "ICUSTAYS", "OUTPUTEVENTS"):
        (d / f"{name}.csv").symlink_to(demo / f"{name}.csv")
    (d / "LABEVENTS.csv.gz").symlink_to(demo / "alt_format_v1_uppercase" / "LABEVENTS.csv.gz")
    chartevents(pd.read_csv(demo / "ICUSTAYS.csv")).to_csv(d / "CHARTEVENTS.csv", index=False)
    return d


@pytest.fixture(scope="module")
def built(mimic_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("cohort") / "cohort.parquet"
    seen = []
    report = build_mimic3_cohort(mimic_dir, out, progress=lambda t, p: seen.append((t, p)))
    return report, pd.read_parquet(out), seen


def expected_cohort(demo: Path) -> pd.DataFrame:
    icu = pd.read_csv(demo / "ICUSTAYS.csv", parse_dates=["intime", "outtime"])
    pat = pd.read_csv(demo / "PATIENTS.csv", parse_dates=["dob"])
    adm = pd.read_csv(demo / "ADMISSIONS.csv")
    first = icu.sort_values(["intime", "icustay_id"]).groupby("subject_id").head(1)
    first = first.merge(pat[["subject_id", "dob", "gender"]], on="subject_id")
    first = first.merge(adm[["hadm_id", "hospital_expire_flag"]], on="hadm_id")
    days = (first["intime"].dt.normalize() - first["dob"].dt.normalize()).dt.days
    first["age"] = np.where(days / 365.242 > 89, 91.4, days / 365.242)
    adults = first[first["age"] >= 18]
    hours = (adults["outtime"] - adults["intime"]).dt.total_seconds() / 3600
    return first, adults, adults[hours > 48]


def test_cohort_filter_counts_on_demo(demo, built):
    report, frame, _ = built
    first, adults, final = expected_cohort(demo)
    assert report.counts["icu_stays"] == 136 and report.counts["patients"] == 100
    assert report.counts["first_stays"] == len(first) == 100
    assert report.counts["adults"] == len(adults)
    assert report.counts["los_over_48h"] == len(final) == len(frame)
    assert sorted(frame["icustay_id"]) == sorted(final["icustay_id"])
    label = final.set_index("icustay_id")["hospital_expire_flag"]
    assert (frame.set_index("icustay_id")["mortality"] == label.reindex(
        frame["icustay_id"])).all()
    assert frame["age"].between(18, 91.4).all()


def test_chartevent_aggregates_are_exact(built):
    _, frame, _ = built
    hr = np.array(HR_VALUES)
    hours = np.arange(6) + 0.5
    assert (frame["heart_rate_count"] == 6).all()
    np.testing.assert_allclose(frame["heart_rate_mean"], hr.mean(), rtol=0, atol=1e-9)
    assert (frame["heart_rate_min"] == 80).all()
    assert (frame["heart_rate_max"] == 86).all()      # 150 (hour 48.5), 200 (error), 400 dropped
    np.testing.assert_allclose(frame["heart_rate_sd"], hr.std(ddof=1), atol=1e-9)
    assert (frame["heart_rate_first"] == 80).all()     # the event before intime is ignored
    assert (frame["heart_rate_last"] == 85).all()      # the event after hour 48 is ignored
    np.testing.assert_allclose(frame["heart_rate_slope"], np.polyfit(hours, hr, 1)[0],
                               atol=1e-9)
    np.testing.assert_allclose(frame["temperature_first"], 37.0, atol=1e-9)   # 98.6 F
    np.testing.assert_allclose(frame["temperature_last"], 38.0, atol=1e-9)    # 100.4 F
    assert (frame["heart_rate_missing"] == 0).all()
    assert (frame["spo2_missing"] == 1).all() and (frame["spo2_count"] == 0).all()
    assert frame["spo2_mean"].isna().all()


def test_labs_and_urine_match_pandas(demo, built):
    _, frame, _ = built
    labs = pd.read_csv(demo / "alt_format_v1_uppercase" / "LABEVENTS.csv.gz",
                       parse_dates=["CHARTTIME"])
    icu = pd.read_csv(demo / "ICUSTAYS.csv", parse_dates=["intime"])
    cre = labs[labs["ITEMID"] == 50912].merge(icu, left_on="HADM_ID", right_on="hadm_id")
    cre = cre[cre["icustay_id"].isin(frame["icustay_id"])]
    h = (cre["CHARTTIME"] - cre["intime"]).dt.total_seconds() / 3600
    cre = cre[(h >= -6) & (h <= 48) & cre["VALUENUM"].notna()]
    want = cre.groupby("icustay_id")["VALUENUM"].agg(["count", "mean", "max"])
    got = frame.set_index("icustay_id").loc[want.index]
    np.testing.assert_array_equal(got["creatinine_count"], want["count"])
    np.testing.assert_allclose(got["creatinine_mean"], want["mean"], atol=1e-9)
    np.testing.assert_allclose(got["creatinine_max"], want["max"], atol=1e-9)
    assert frame["urine_output_total"].notna().sum() > 0.5 * len(frame)
    assert frame.shape[1] > 300


def test_progress_per_table(built):
    _, _, seen = built
    tables = {t for t, _ in seen}
    assert {"CHARTEVENTS", "LABEVENTS", "OUTPUTEVENTS"} <= tables
    chart = [p for t, p in seen if t == "CHARTEVENTS"]
    assert chart[-1] == 100.0 and all(0 <= p <= 100 for p in chart)


def test_upper_case_headers_and_gzip_give_the_same_cohort(mimic_dir, built, tmp_path):
    d = tmp_path / "upper"
    d.mkdir()
    for p in mimic_dir.iterdir():
        name = p.name.split(".")[0].lower()       # lower-case file names too
        text = gzip.open(p, "rt").read() if p.name.endswith(".gz") else p.read_text()
        head, rest = text.split("\n", 1)
        with gzip.open(d / f"{name}.csv.gz", "wt") as fh:
            fh.write(head.upper() + "\n" + rest)
    out = tmp_path / "c.parquet"
    build_mimic3_cohort(d, out)
    pd.testing.assert_frame_equal(pd.read_parquet(out), built[1])


def test_loader_and_cli(built, mimic_dir, tmp_path):
    report, frame, _ = built
    cohort = load_dataset("mimic3-mortality", path=report.out)
    assert len(cohort) == len(frame)
    # gaps stay missing (each model imputes from its own training rows), none added
    feats = cohort.X.columns
    np.testing.assert_array_equal(cohort.X.isna().to_numpy(), frame[feats].isna().to_numpy())
    assert not cohort.X.isna().all().any()           # never-measured columns are dropped
    assert set(cohort.meta["dropped_empty_columns"]) == set(
        c for c in frame.columns if frame[c].isna().all())
    assert set(cohort.subgroups) <= {"old_female", "old_male", "young_female", "young_male"}
    assert "mortality" not in cohort.X.columns and "icustay_id" not in cohort.X.columns
    out = tmp_path / "cli.parquet"
    res = runner.invoke(app, ["data", "mimic3", "--mimic-dir", str(mimic_dir), "--out",
                              str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    assert f"{len(frame)} ICU stays" in res.stdout
    pd.testing.assert_frame_equal(pd.read_parquet(out), frame)


def _err(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.stderr.strip().splitlines() if ln]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_bad_mimic_dirs(mimic_dir, tmp_path):
    assert "not a MIMIC-III directory" in _err(runner.invoke(
        app, ["data", "mimic3", "--mimic-dir", str(tmp_path), "--out", str(tmp_path / "c.parquet")]))
    partial = tmp_path / "partial"
    partial.mkdir()
    for p in mimic_dir.iterdir():
        if not p.name.startswith("CHARTEVENTS"):
            (partial / p.name).symlink_to(p.resolve())
    msg = _err(runner.invoke(app, ["data", "mimic3", "--mimic-dir", str(partial), "--out",
                                   str(tmp_path / "c.parquet")]))
    assert "CHARTEVENTS is missing" in msg
    pd.DataFrame({"row_id": [1], "icustay_id": [1], "charttime": ["2100-01-01"]}).to_csv(
        partial / "CHARTEVENTS.csv", index=False)
    with pytest.raises(MimicError, match="lacks the column.*itemid, valuenum"):
        build_mimic3_cohort(partial, tmp_path / "c.parquet")
    with pytest.raises(MimicError, match="must end in .parquet"):
        build_mimic3_cohort(mimic_dir, tmp_path / "c.csv")


def test_missing_cohort_file_message(tmp_path, monkeypatch):
    monkeypatch.setenv("NOHARM_DATA_DIR", str(tmp_path))
    with pytest.raises(Exception, match="noharm data mimic3"):
        load_mimic3_mortality()
    msg = _err(runner.invoke(app, ["personalize", "--dataset", "mimic3-mortality"]))
    assert "noharm data mimic3" in msg


def test_protocol_runs_on_the_built_cohort(built):
    report, frame, _ = built
    res = runner.invoke(app, ["personalize", "--dataset", "mimic3-mortality", "--data",
                              str(report.out), "--models", "generic,conditional-bias",
                              "--seeds", "1", "--folds", "2", "--no-guard", "--max-epochs", "3",
                              "--hidden-layers", "2", "--hidden-units", "8", "--attr-layers",
                              "2", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "mimic3-mortality" in res.stdout
    assert any(line.startswith("old_female") for line in res.stdout.splitlines()) and "cond-bias" in res.stdout
