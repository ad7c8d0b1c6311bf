import shutil
import urllib.error

import numpy as np
import pandas as pd
import pytest

from noharm.datasets import load_dataset, load_heart, load_tabular, make_synthetic
from noharm.datasets import _fetch
from noharm.errors import (ChecksumError, ColumnNotFoundError, DataNotFoundError, DatasetError,
                           MissingValuesError, TargetError)


def test_heart_preprocessing_counts_and_labels():
    c = load_heart()
    assert c.X.shape == (297, 13)
    assert c.meta["rows_raw"] == 303 and c.meta["rows_dropped_missing"] == 6
    assert c.subgroups.value_counts().to_dict() == {
        "young_male": 149, "young_female": 57, "old_male": 52, "old_female": 39}
    for col in ["cp", "thal", "ca", "slope", "restecg"]:
        vals = np.sort(c.X[col].unique())
        assert vals.tolist() == list(range(len(vals)))          # ordinal codes 0..k-1
    assert set(c.y.unique()) == {0, 1} and c.y.sum() == 137
    assert (c.groups.loc[c.X["age"] >= 60, "age"] == "old").all()
    assert (c.groups.loc[c.X["sex"] == 0, "sex"] == "female").all()


def test_resolution_order(tmp_path, monkeypatch, data_dir):
    src = data_dir / "uci_heart" / "processed.cleveland.data"
    explicit = tmp_path / "explicit"
    explicit.mkdir()
    shutil.copy(src, explicit / "processed.cleveland.data")
    assert load_heart(explicit).meta["source"].startswith(str(explicit))
    cache = tmp_path / "cache"
    (cache / "uci_heart").mkdir(parents=True)
    shutil.copy(src, cache / "uci_heart" / "processed.cleveland.data")
    monkeypatch.setenv("NOHARM_CACHE_DIR", str(cache))
    monkeypatch.setenv("NOHARM_DATA_DIR", str(tmp_path / "empty"))
    assert load_heart().meta["source"].startswith(str(cache))


def test_checksum_failure(tmp_path):
    bad = tmp_path / "processed.cleveland.data"
    bad.write_text("63.0,1.0,1.0,145.0,233.0,1.0,2.0,150.0,0.0,2.3,3.0,0.0,6.0,0\n")
    with pytest.raises(ChecksumError, match="checksum"):
        load_heart(bad)


def test_missing_file_and_offline_download(tmp_path, monkeypatch):
    with pytest.raises(DataNotFoundError, match="does not exist"):
        load_heart(tmp_path / "nope.data")
    monkeypatch.setenv("NOHARM_DATA_DIR", str(tmp_path))

    def offline(*a, **k):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(_fetch.urllib.request, "urlopen", offline)
    monkeypatch.setenv("NOHARM_CACHE_DIR", str(tmp_path / "cache"))
    # Heart ships inside the package (tests/test_offline.py); a file that does not is
    # downloaded, and offline that is one clear error that leaves no partial file
    with pytest.raises(DataNotFoundError, match="NOHARM_DATA_DIR"):
        _fetch.resolve("other", "other.data", sha256=None, url="https://example.org/x")
    assert not any((tmp_path).rglob(".part-*"))


def test_unknown_dataset():
    with pytest.raises(DatasetError, match="unknown dataset 'mimic'"):
        load_dataset("mimic")


def test_synthetic_is_seeded_and_has_a_small_flipped_group():
    a, b = make_synthetic(random_state=3), make_synthetic(random_state=3)
    pd.testing.assert_frame_equal(a.X, b.X)
    counts = a.subgroups.value_counts()
    assert counts.idxmin() == "old_female" and counts.min() < 0.2 * len(a)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_tabular_csv_and_parquet(tmp_path, suffix):
    df = pd.DataFrame({"age": [30, 70, 50, 80] * 5, "sex": ["F", "M", "M", "F"] * 5,
                       "bp": np.arange(20.0), "outcome": ["no", "yes"] * 10})
    path = tmp_path / f"d{suffix}"
    df.to_csv(path, index=False) if suffix == ".csv" else df.to_parquet(path)
    c = load_tabular(path, target="outcome", groups=["age:60", "sex"])
    assert set(c.subgroups) == {"age<60_F", "age>=60_M", "age<60_M", "age>=60_F"}
    assert c.y.tolist()[:2] == [0, 1]
    assert "sex_F" in c.X.columns            # categorical features are one-hot encoded
    with pytest.raises(ColumnNotFoundError, match="'target'"):
        load_tabular(path, target="target", groups=["sex"])
    with pytest.raises(ColumnNotFoundError, match="group column 'race'"):
        load_tabular(path, target="outcome", groups=["race"])


def test_tabular_bad_target_and_missing_values(tmp_path):
    df = pd.DataFrame({"g": ["a", "b", "a", "b"], "x": [1.0, None, 3.0, 4.0], "y": [0, 1, 2, 3]})
    with pytest.raises(MissingValuesError, match="--impute median"):
        load_tabular(df.assign(y=[0, 1, 0, 1]), target="y", groups=["g"], impute="none")
    with pytest.raises(TargetError, match="binary.*--target 'y>0'"):
        load_tabular(df, target="y", groups=["g"])      # the gap is imputed, not an error
    with pytest.raises(TargetError, match="binary"):
        load_tabular(df, target="y", groups=["g"], dropna=True)


def test_diabetes_preprocessing():
    from noharm.datasets import load_diabetes
    c = load_diabetes()
    assert c.meta["rows_raw"] == 101766 and len(c) == 99340      # dead/hospice/unknown out
    assert c.y.mean() == pytest.approx(0.1139, abs=1e-3)         # readmitted < 30 days
    assert not c.X.isna().any().any() and "weight" not in c.X.columns
    assert set(c.groups["gender"]) == {"Female", "Male"}
    assert {"Caucasian", "AfricanAmerican", "Unknown"} <= set(c.groups["race"])
    assert set(c.groups["age"]) == {"young", "old"}
    assert c.split_by.nunique() < len(c)                           # patients repeat
    los = load_diabetes(target="time_in_hospital")
    assert "time_in_hospital" not in los.X.columns and los.y.min() >= 1


def test_icd9_chapters():
    from noharm.datasets.diabetes import icd9_chapter
    assert [icd9_chapter(c) for c in ["428", "250.83", "V57", "786", "996", None]] == [
        "circulatory", "diabetes", "other", "respiratory", "injury", "missing"]
