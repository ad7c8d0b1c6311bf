"""Real clinical files as they come (issue 14): reading options, target expressions,
screening (IDs, leaks, junk cells), per-run imputation, group specs, external validation
and prediction on new data."""
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from noharm.cli import app
from noharm.datasets import load_tabular
from noharm.datasets.reading import ReadOptions
from noharm.errors import (ConfigError, DatasetError, FeatureMismatchError, GroupError,
                           MissingValuesError)
from noharm.models import GenericClassifier, ReferenceClassifier

from conftest import runner_error as _err

runner = CliRunner()
FAST = ["--seeds", "1", "--folds", "3", "--max-epochs", "5", "--patience", "2",
        "--hidden-layers", "2", "--hidden-units", "8", "--attr-layers", "2", "--jobs", "1"]
CLEVELAND_NAMES = ("age,sex,cp,trestbps,chol,fbs,restecg,thalach,exang,oldpeak,slope,ca,"
                   "thal,num")


@pytest.fixture(scope="module")
def cleveland(data_dir):
    return data_dir / "uci_heart" / "processed.cleveland.data"


def test_cleveland_as_distributed_runs_with_options_only(tmp_path, cleveland):
    """No header, '?' for missing, a 0-4 severity target: one command, rows imputed."""
    out = tmp_path / "run"
    res = runner.invoke(app, ["personalize", "--data", str(cleveland), "--names",
                              CLEVELAND_NAMES, "--na-values", "?", "--target", "num>0",
                              "--group", "age:55", "--group", "sex", "--output", str(out),
                              *FAST])
    assert res.exit_code == 0, res.output
    assert "303 rows, 13 features, 6 missing cells" in res.stderr
    cfg = json.loads((out / "config.json").read_text())
    meta = cfg["cohort_meta"]
    assert meta["rows"] == meta["rows_raw"] == 303         # imputed, not dropped
    assert meta["target_expression"] == "num>0" and meta["missing_cells"] == 6
    assert cfg["data_source"]["na_values"] == ["?"]
    assert cfg["data_source"]["names"] == CLEVELAND_NAMES
    results = pd.read_csv(out / "results.csv")
    n_all = results[(results.role == "test") & (results.subgroup == "all")]["n"].iloc[0]
    assert n_all == 61                                      # 20 % of all 303 rows
    # the networks learned a missing indicator for the columns with gaps (ca, thal)
    mcfg = json.loads((out / "models" / "generic" / "split0" / "config.json").read_text())
    assert mcfg["missing_indicators"] and mcfg["params"]["impute"] == "median"


def test_cleveland_without_options_says_what_to_do(cleveland):
    with pytest.raises(DatasetError, match="unknown file type.*--sep.*--names"):
        load_tabular(cleveland, target="num>0", groups=["sex"])
    names = tuple(CLEVELAND_NAMES.split(","))
    with pytest.raises(DatasetError, match=r"'ca' holds numbers except for 4 cell\(s\) "
                                           r"\(row 167: '\?'.*--na-values '\?'"):
        load_tabular(cleveland, target="num>0", groups=["sex"], read=ReadOptions(names=names))
    with pytest.raises(DatasetError, match="14 columns but --names gives 3"):
        load_tabular(cleveland, target="num>0", groups=["sex"],
                     read=ReadOptions(names=("a", "b", "c")))
    c = load_tabular(cleveland, target="num>0", groups=["sex"],
                     read=ReadOptions(names=names, na_values=("?", "chol=0")))
    assert c.X["chol"].isna().sum() == 0                 # Cleveland has no chol = 0
    assert c.X["ca"].isna().sum() == 4 and c.X["thal"].isna().sum() == 2
    assert c.y.tolist()[:3] == [0, 1, 1]                # num 0, 2, 1
    with pytest.raises(MissingValuesError, match="--impute median"):
        load_tabular(cleveland, target="num>0", groups=["sex"], impute="none",
                     read=ReadOptions(names=names, na_values=("?",)))


@pytest.mark.parametrize("sep", [";", "\t", ","])
def test_delimiter_is_sniffed(tmp_path, sep):
    df = pd.DataFrame({"x": np.arange(40) / 3, "g": ["a", "b"] * 20, "y": [0, 1, 1, 0] * 10})
    path = tmp_path / "d.txt"
    df.to_csv(path, sep=sep, index=False)
    c = load_tabular(path, target="y", groups=["g"])
    assert list(c.X.columns) == ["x", "g_a", "g_b"]
    np.testing.assert_allclose(c.X["x"], df["x"], rtol=1e-6)
    with pytest.raises(ConfigError, match="one character"):
        ReadOptions(sep=";;")


def test_per_column_missing_codes_and_target_expressions(tmp_path):
    df = pd.DataFrame({"chol": [0, 200, 250, 0] * 10, "bp": [0, 120, 130, 140] * 10,
                       "sev": [0, 1, 2, 3] * 10, "dx": ["yes", "no"] * 20,
                       "g": ["a", "a", "b", "b"] * 10})
    c = load_tabular(df, target="sev>=2", groups=["g"], read=ReadOptions(na_values=("chol=0",)))
    assert c.X["chol"].isna().sum() == 20 and c.X["bp"].isna().sum() == 0   # only chol
    assert c.y.tolist()[:4] == [0, 0, 1, 1]
    assert load_tabular(df, target="dx==yes", groups=["g"]).y.tolist()[:2] == [1, 0]
    assert load_tabular(df, target="sev!=0", groups=["g"]).y.sum() == 30
    with pytest.raises(MissingValuesError, match=r"target 'sev' is missing on 2 row\(s\) "
                                                 r"\(rows 2, 6\).*--dropna"):
        load_tabular(df.assign(sev=df["sev"].where(~df.index.isin([1, 5]))),
                     target="sev>0", groups=["g"])
    with pytest.raises(ConfigError, match="compare it with a number"):
        load_tabular(df, target="sev>high", groups=["g"])
    with pytest.raises(ConfigError, match="'cholesterol'"):
        load_tabular(df, target="sev>0", groups=["g"],
                     read=ReadOptions(na_values=("cholesterol=0",)))


def _messy_frame(n=300, seed=0):
    """An id column, a leak, gaps in half the columns and a real signal."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    y = (x[:, 0] + x[:, 1] + rng.normal(size=n) > 0).astype(int)
    df = pd.DataFrame(x, columns=[f"x{i}" for i in range(6)])
    for i in range(3):                                       # half the columns have gaps
        df.loc[rng.random(n) < 0.3, f"x{i}"] = np.nan
    df.insert(0, "patient_id", rng.permutation(n) + 10_000)
    df["followup_days"] = np.where(y == 1, rng.uniform(1, 30, n), rng.uniform(200, 400, n))
    df["site"] = rng.choice(["north", "south"], size=n)
    df["y"] = y
    return df


def test_id_and_leak_are_named_in_the_header_and_config(tmp_path):
    path = tmp_path / "messy.csv"
    _messy_frame().to_csv(path, index=False)
    out = tmp_path / "run"
    args = ["personalize", "--data", str(path), "--target", "y", "--group", "site",
            "--models", "generic,logreg", *FAST]
    res = runner.invoke(app, [*args, "--output", str(out)])
    assert res.exit_code == 0, res.output
    assert "'patient_id' looks like an ID" in res.stderr
    assert "'followup_days' alone predicts the target with AUROC 1.00" in res.stderr
    summary_md = (out / "summary.md").read_text()
    assert summary_md.startswith("> warning: column 'patient_id' looks like an ID")
    assert "possible leak" in summary_md
    meta = json.loads((out / "config.json").read_text())["cohort_meta"]
    assert meta["excluded_auto"] == ["patient_id"]
    assert "patient_id" not in json.dumps(meta["schema"])
    assert any("followup_days" in w for w in meta["warnings"])
    res = runner.invoke(app, [*args, "--exclude", "followup_days"])
    assert res.exit_code == 0, res.output
    assert "possible leak" not in res.stderr and "patient_id" in res.stderr
    res = runner.invoke(app, [*args, "--exclude", "folowup_days"])
    assert "--exclude names column(s) ['folowup_days']" in _err(res)
    c = load_tabular(path, target="y", groups=["site"], keep=["patient_id"])
    assert "patient_id" in c.X.columns and c.meta["excluded_auto"] == []


def test_junk_cells_fail_with_the_cells_named(tmp_path):
    df = _messy_frame()
    df["x4"] = df["x4"].astype(object)
    df.loc[[4, 9], "x4"] = ["n.d.", "<0.1"]
    path = tmp_path / "junk.csv"
    df.to_csv(path, index=False)
    res = runner.invoke(app, ["personalize", "--data", str(path), "--target", "y",
                              "--group", "site", *FAST])
    line = _err(res)
    assert "'x4' holds numbers except for 2 cell(s) (row 5: 'n.d.', row 10: '<0.1'" in line
    assert "--na-values" in line


def test_group_specs_that_make_one_subgroup_are_errors():
    df = pd.DataFrame({"age": np.arange(20, 80), "y": [0, 1] * 30, "x": np.arange(60) / 7})
    with pytest.raises(GroupError, match=r"one subgroup.*from 20 to 79.*--group age:49.5 splits"):
        load_tabular(df, target="y", groups=["age:2000000000"])
    with pytest.raises(ConfigError, match="finite"):
        load_tabular(df, target="y", groups=["age:nan"])
    with pytest.raises(ConfigError, match="repeat"):
        load_tabular(df, target="y", groups=["age:50:young,young"])


def test_small_subgroups_list_every_size_and_a_cut(tmp_path):
    df = pd.DataFrame({"age": np.r_[np.full(4, 90), np.arange(20, 76)], "y": [0, 1] * 30,
                       "x": np.arange(60) / 7})
    path = tmp_path / "small.csv"
    df.to_csv(path, index=False)
    res = runner.invoke(app, ["personalize", "--data", str(path), "--target", "y",
                              "--group", "age:85", *FAST])
    line = _err(res)
    assert "rows per subgroup: age>=85 4, age<85 56" in line and "--group age:" in line


def _sites(n=400, seed=0, shift=0.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)) + shift
    sex = rng.choice(["F", "M"], size=n)
    y = (x[:, 0] - x[:, 1] + (sex == "F") * 0.5 + rng.normal(size=n) > 0).astype(int)
    df = pd.DataFrame(x, columns=["a", "b", "c", "d"]).assign(sex=sex, y=y)
    df.loc[rng.random(n) < 0.2, "c"] = np.nan
    return df


def test_external_validation_end_to_end(tmp_path):
    train, ext = tmp_path / "site1.csv", tmp_path / "site2.csv"
    _sites().to_csv(train, index=False)
    _sites(seed=1, shift=0.2)[["y", "d", "c", "b", "a", "sex"]].to_csv(ext, index=False)
    out = tmp_path / "run"
    res = runner.invoke(app, ["personalize", "--data", str(train), "--target", "y",
                              "--group", "sex", "--test-data", str(ext), "--output", str(out),
                              "--models", "generic,decoupled,logreg", *FAST])
    assert res.exit_code == 0, res.output
    assert "External validation" in res.stdout
    ext_summary = pd.read_csv(out / "summary_external.csv")
    assert set(ext_summary["subgroup"]) == {"F", "M", "all"}
    assert (ext_summary.loc[ext_summary.subgroup == "all", "n_test"] == 400).all()
    acc = ext_summary[(ext_summary.metric == "accuracy") & (ext_summary.model == "decoupled")]
    assert acc["gain_ci_low"].notna().all()                  # bootstrap over external rows
    results = pd.read_csv(out / "results.csv")
    assert set(results["role"]) >= {"test", "external", "guard"}
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["external_meta"]["rows"] == 400
    res = runner.invoke(app, ["report", str(out)])
    assert res.exit_code == 0, res.output
    assert "External validation" in (out / "report.html").read_text()
    # the external file must have the training columns and subgroups
    bad = tmp_path / "bad.csv"
    _sites(seed=2).drop(columns="d").to_csv(bad, index=False)
    res = runner.invoke(app, ["personalize", "--data", str(train), "--target", "y",
                              "--group", "sex", "--test-data", str(bad), *FAST])
    assert "lacks the feature column(s) ['d']" in _err(res)
    _sites(seed=2).assign(sex=["X", "F"] * 200).to_csv(bad, index=False)
    res = runner.invoke(app, ["personalize", "--data", str(train), "--target", "y",
                              "--group", "sex", "--test-data", str(bad), *FAST])
    assert "'sex' has value(s) ['X'] never seen in training" in _err(res)   # as a feature
    res = runner.invoke(app, ["personalize", "--data", str(train), "--target", "y",
                              "--group", "sex", "--drop-group-columns", "--test-data",
                              str(bad), *FAST])
    assert "subgroup(s) ['X']" in _err(res)                                 # as a group


def test_predict_applies_saved_models_by_column_name(tmp_path):
    train = tmp_path / "site1.csv"
    df = _sites()
    df.to_csv(train, index=False)
    out = tmp_path / "run"
    res = runner.invoke(app, ["personalize", "--data", str(train), "--target", "y",
                              "--group", "sex", "--reference", "generic", "--output", str(out),
                              "--models", "generic,decoupled,logreg", *FAST])
    assert res.exit_code == 0, res.output
    new = tmp_path / "new.csv"
    df.drop(columns="y")[["sex", "d", "c", "b", "a"]].head(50).to_csv(new, index=False)
    preds = tmp_path / "preds.csv"
    for model in ("generic/split0", "guarded/split0"):
        res = runner.invoke(app, ["predict", "--model", str(out / "models" / model),
                                  "--data", str(new), "--out", str(preds), "--overwrite"])
        assert res.exit_code == 0, res.output
        p = pd.read_csv(preds)
        assert list(p.columns) == ["row", "subgroup", "p", "prediction"] and len(p) == 50
    # the same probabilities as the Python API on the training column order
    from noharm.models import NetClassifier
    from noharm.datasets.features import FeatureSchema
    meta = json.loads((out / "models" / "features.json").read_text())
    X = FeatureSchema.from_dict(meta["schema"]).transform(df.head(50))
    net = NetClassifier.load(out / "models" / "generic" / "split0")
    res = runner.invoke(app, ["predict", "--model", str(out / "models" / "generic" / "split0"),
                              "--data", str(new), "--out", str(preds), "--overwrite"])
    np.testing.assert_allclose(pd.read_csv(preds)["p"], net.predict_proba(X)[:, 1], rtol=1e-6)
    # nothing overwritten without asking; mismatching files named
    res = runner.invoke(app, ["predict", "--model", str(out / "models" / "generic" / "split0"),
                              "--data", str(new), "--out", str(preds)])
    assert "exists" in _err(res)
    bad = tmp_path / "bad.csv"
    df.rename(columns={"a": "alpha"}).to_csv(bad, index=False)
    res = runner.invoke(app, ["predict", "--model", str(out / "models" / "generic" / "split0"),
                              "--data", str(bad), "--out", str(tmp_path / "p2.csv")])
    assert "['alpha']" in _err(res)
    df.drop(columns="sex").to_csv(bad, index=False)
    res = runner.invoke(app, ["predict", "--model", str(out / "models" / "guarded" / "split0"),
                              "--data", str(bad), "--out", str(tmp_path / "p3.csv")])
    assert "lacks the feature column(s) ['sex']" in _err(res)
    import shutil                     # a deleted guarded model: the error says what to use
    shutil.rmtree(out / "models" / "guarded")
    res = runner.invoke(app, ["predict", "--model", str(out / "models" / "guarded" / "split0"),
                              "--data", str(new), "--out", str(tmp_path / "p4.csv")])
    msg = _err(res)
    assert "was not exported or was deleted" in msg and "run the same" in msg
    assert "models/generic/split0" in msg


def test_python_api_matches_columns_by_name():
    df = _sites()
    X, y = df.drop(columns=["y", "sex"]), df["y"]
    for est in (GenericClassifier(max_epochs=5, hidden_layers=2),
                ReferenceClassifier(kind="logreg")):
        est.fit(X, y, sensitive_features=df["sex"])
        p = est.predict_proba(X)[:, 1]
        np.testing.assert_allclose(est.predict_proba(X[["d", "c", "b", "a"]])[:, 1], p)
        with pytest.raises(FeatureMismatchError, match=r"missing \['a'\]; unknown \['A'\]"):
            est.predict_proba(X.rename(columns={"a": "A"}))
        with pytest.raises(FeatureMismatchError, match="expecting 4 features"):
            est.predict_proba(X.to_numpy()[:, :3])


def test_imputation_uses_each_runs_training_rows_only():
    """The fill values are the medians of each run's own training rows: changing rows no
    run trains on changes nothing, and a model's predictions survive save/load."""
    df = _sites(n=300)
    X, y = df[["a", "b", "c", "d"]], df["y"]
    rows = np.arange(300)
    tr = [rows[:150], rows[100:250]]
    va = [rows[150:200], rows[250:]]
    m = GenericClassifier(max_epochs=3, hidden_layers=2).fit_runs(
        X, y, train_indices=tr, val_indices=va, seeds=[0, 1])
    for e, t in enumerate(tr):
        np.testing.assert_allclose(m.net_.scale.fill[e, 0].numpy(),
                                   np.nanmedian(X.to_numpy()[t], axis=0), rtol=1e-6)
    X2 = X.copy()
    X2.loc[250:, "c"] = 1e6                                  # rows no run trains on
    m2 = GenericClassifier(max_epochs=3, hidden_layers=2).fit_runs(
        X2, y, train_indices=tr, val_indices=[rows[150:200], rows[200:250]], seeds=[0, 1])
    m3 = GenericClassifier(max_epochs=3, hidden_layers=2).fit_runs(
        X, y, train_indices=tr, val_indices=[rows[150:200], rows[200:250]], seeds=[0, 1])
    np.testing.assert_array_equal(m2.net_.scale.fill.numpy(), m3.net_.scale.fill.numpy())
    assert m.missing_indicators_ == [2]                       # column c has gaps


def test_missing_indicator_carries_informative_missingness():
    """When a value is missing mostly for positives, the indicator makes it usable: held-out
    AUROC with imputation beats dropping that column (median over 3 seeds)."""
    from sklearn.metrics import roc_auc_score
    gains = []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        n = 1200
        x = rng.normal(size=(n, 3))
        y = (x[:, 0] + rng.normal(size=n) > 0.5).astype(int)
        X = pd.DataFrame(x, columns=["a", "b", "c"])
        X.loc[(y == 1) & (rng.random(n) < 0.7), "c"] = np.nan   # not missing at random
        tr, te = np.arange(800), np.arange(800, n)
        full = ReferenceClassifier(kind="logreg").fit(X.iloc[tr], y[tr])
        drop = ReferenceClassifier(kind="logreg").fit(X.iloc[tr][["a", "b"]], y[tr])
        auc_full = roc_auc_score(y[te], full.predict_proba(X.iloc[te])[:, 1])
        auc_drop = roc_auc_score(y[te], drop.predict_proba(X.iloc[te][["a", "b"]])[:, 1])
        net = GenericClassifier(hidden_layers=2, hidden_units=16, random_state=seed).fit(
            X.iloc[tr], y[tr])
        auc_net = roc_auc_score(y[te], net.predict_proba(X.iloc[te])[:, 1])
        gains.append((auc_full - auc_drop, auc_net - auc_drop))
    med = np.median(np.array(gains), axis=0)
    assert med[0] > 0.03 and med[1] > 0.03, gains


def test_saved_model_with_indicators_round_trips(tmp_path):
    df = _sites()
    X, y = df[["a", "b", "c", "d"]], df["y"]
    m = GenericClassifier(max_epochs=3, hidden_layers=2).fit(X, y)
    m.save(tmp_path / "m")
    from noharm.models import NetClassifier
    back = NetClassifier.load(tmp_path / "m")
    assert back.missing_indicators_ == [2]
    np.testing.assert_array_equal(back.predict_proba(X), m.predict_proba(X))
    from noharm.debias._common import as_module
    import torch
    with torch.no_grad():
        logits = as_module(m)(torch.from_numpy(np.array(X, dtype=np.float32))).squeeze(-1)
    np.testing.assert_allclose(torch.sigmoid(logits).numpy(), m.predict_proba(X)[:, 1],
                               rtol=1e-5, atol=1e-6)
