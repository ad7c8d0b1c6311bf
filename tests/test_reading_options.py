"""Reading real files (issue 29): comma lists, missing group values, decimal commas,
external targets mapped by value, copied rows and repeated ids, overflowing numbers,
header names with spaces, truncated gzip files, and a property test of the reader."""
import gzip
import json
import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from noharm.cli import app
from noharm.cli._data import DataSource
from noharm.datasets import load_tabular
from noharm.datasets.features import coerce_numeric
from noharm.datasets.reading import ReadOptions, read_table
from noharm.errors import ConfigError, DatasetError, NoharmError, TargetError

from conftest import runner_error as _err

runner = CliRunner()
FAST = ["--seeds", "1", "--folds", "2", "--max-epochs", "3", "--patience", "2",
        "--hidden-layers", "2", "--hidden-units", "8", "--attr-layers", "2", "--jobs", "1",
        "--no-guard", "--models", "generic,logreg"]


def _frame(n=120, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2)).round(3)
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": rng.integers(0, 5, n),
                         "sex": rng.choice(["F", "M"], n), "age": rng.integers(20, 90, n),
                         "y": (x[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(int)})


def _show(*args):
    return runner.invoke(app, ["data", "show", *map(str, args)])


# 1. comma lists -------------------------------------------------------------------------

def test_exclude_and_keep_take_comma_lists_as_well_as_repeats(tmp_path):
    df = _frame().assign(pid=np.arange(120), visit=np.arange(120) + 1000)
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    base = dict(target="y", groups=["sex"])
    c = load_tabular(path, exclude=["a,b"], **base)
    assert not {"a", "b"} & set(c.X.columns) and c.meta["excluded"] == ["a", "b"]
    assert load_tabular(path, exclude=["a", "b"], **base).X.columns.tolist() == \
        c.X.columns.tolist()
    c = load_tabular(path, keep=["pid, visit"], **base)
    assert {"pid", "visit"} <= set(c.X.columns) and c.meta["excluded_auto"] == []
    res = _show("--data", path, "--target", "y", "--group", "sex", "--exclude", "a,c",
                "--exclude", "b")
    assert res.exit_code == 0, res.output
    assert "3 features" in res.stdout                   # age and sex one-hot only
    assert "--exclude ',' names no column" in _err(
        _show("--data", path, "--target", "y", "--group", "sex", "--exclude", ","))
    assert "--exclude names column(s) ['zz']" in _err(
        _show("--data", path, "--target", "y", "--group", "sex", "--exclude", "a,zz"))


def test_group_stays_one_attribute_per_option_and_says_so(tmp_path):
    path = tmp_path / "d.csv"
    _frame().to_csv(path, index=False)
    line = _err(_show("--data", path, "--target", "y", "--group", "sex,age"))
    assert "repeat it, --group sex --group age" in line
    line = _err(_show("--data", path, "--target", "y", "--group", "age:60,sex"))
    assert "--group age:60 --group sex" in line
    c = load_tabular(path, target="y", groups=["age:40,60"])          # commas = cuts
    assert c.groups["age"].nunique() == 3


def test_na_values_take_comma_lists_and_column_codes_keep_their_column(tmp_path):
    df = _frame().astype({"c": object})
    df.loc[[1, 2], "c"] = ["?", "NA"]
    df.loc[[3, 4], "b"] = [-9.0, 0.0]
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    opts = ReadOptions(na_values=("?,NA", "b=-9,0"))
    assert opts.split_na() == (["?", "NA"], {"b": ["-9", "0"]})
    c = load_tabular(path, target="y", groups=["sex"], read=opts)
    assert c.X["c"].isna().sum() == 2 and c.X["b"].isna().sum() == 2
    assert c.X["a"].isna().sum() == 0            # '-9,0' stayed with b: a has no NaN
    assert ReadOptions(na_values=("x=a\\,b",)).split_na() == ([], {"x": ["a,b"]})


def test_an_empty_models_list_is_an_error_not_the_defaults():
    line = _err(runner.invoke(app, ["personalize", "--models", ","]))
    assert "--models is empty" in line


# 2. missing group values -----------------------------------------------------------------

def _gender_gaps(tmp_path):
    df = _frame(200).rename(columns={"sex": "Gender"})
    df.loc[[3, 50, 77], "Gender"] = np.nan
    df.loc[[5, 6], "a"] = np.nan               # a gap elsewhere: kept (imputed)
    path = tmp_path / "physionet.csv"
    df.to_csv(path, index=False)
    return path


def test_missing_group_values_error_drop_or_own(tmp_path):
    path = _gender_gaps(tmp_path)
    line = _err(_show("--data", path, "--target", "y", "--group", "Gender"))
    assert "'Gender' is missing on 3 row(s) (rows 4, 51, 78)" in line
    assert "--group-missing drop" in line and "--group-missing own" in line
    res = _show("--data", path, "--target", "y", "--group", "Gender", "--group-missing",
                "drop")
    assert res.exit_code == 0, res.output
    assert "3 row(s) with a missing group value (Gender: 3" in res.stderr + res.stdout
    assert "197 rows" in res.stdout
    c = load_tabular(path, target="y", groups=["Gender"], group_missing="own")
    assert len(c) == 200 and (c.subgroups == "Gender=missing").sum() == 3
    assert c.X["a"].isna().sum() == 2
    line = _err(_show("--data", path, "--target", "y", "--group", "Gender",
                      "--group-missing", "keep"))
    assert "--group-missing must be one of" in line
    # a numeric attribute cut into bins gets its own level too; a clash is refused
    from noharm.groups import GroupSpec
    df = pd.DataFrame({"age": [30, np.nan, 70], "s": ["a", None, "s=missing"]})
    assert GroupSpec.parse(["age:60"]).labels(df[["age"]], "own").tolist() == \
        ["age<60", "age=missing", "age>=60"]
    with pytest.raises(ConfigError, match="already has a value 's=missing'"):
        GroupSpec.parse(["s"]).transform(df, "own")


def test_group_missing_is_recorded_and_reloads_identically(tmp_path):
    path = _gender_gaps(tmp_path)
    out = tmp_path / "run"
    res = runner.invoke(app, ["personalize", "--data", str(path), "--target", "y", "--group",
                              "Gender", "--group-missing", "drop", "--output", str(out),
                              *FAST])
    assert res.exit_code == 0, res.output
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["data_source"]["group_missing"] == "drop"
    assert any("--group-missing drop" in w for w in cfg["cohort_meta"]["warnings"])
    assert "(--group-missing drop)" in (out / "summary.md").read_text()
    again = DataSource.from_dict(cfg["data_source"]).load()
    assert len(again) == 197
    first = DataSource(data=path, target="y", group=["Gender"], group_missing="drop").load()
    pd.testing.assert_frame_equal(again.X, first.X)
    assert again.subgroups.tolist() == first.subgroups.tolist()


# 3. decimal commas -----------------------------------------------------------------------

def test_decimal_comma_files_read_with_decimal_and_are_refused_without(tmp_path):
    df = _frame()
    eu, us = tmp_path / "eu.csv", tmp_path / "us.csv"
    df.to_csv(eu, sep=";", decimal=",", index=False)
    df.to_csv(us, index=False)
    line = _err(_show("--data", eu, "--target", "y", "--group", "sex"))
    assert "column 'a' holds numbers written with a decimal comma" in line
    assert "--decimal ," in line
    res = _show("--data", eu, "--target", "y", "--group", "sex", "--decimal", ",")
    assert res.exit_code == 0, res.output
    assert "120 rows, 6 features" in res.stdout
    c_eu = load_tabular(eu, target="y", groups=["sex"], read=ReadOptions(decimal=","))
    c_us = load_tabular(us, target="y", groups=["sex"])
    pd.testing.assert_frame_equal(c_eu.X, c_us.X)
    assert c_eu.meta["read"]["decimal"] == ","
    with pytest.raises(ConfigError, match="--sep and --decimal are both ','"):
        ReadOptions(sep=",", decimal=",")
    with pytest.raises(ConfigError, match="--decimal must be"):
        ReadOptions(decimal=":")
    # a group column with decimal commas is refused too (subgroups '0,0' / '1,0')
    g = pd.DataFrame({"x": np.arange(40) / 7, "g": ["0,0", "1,0"] * 20, "y": [0, 1] * 20})
    with pytest.raises(DatasetError, match="'g' holds numbers written with a decimal comma"):
        load_tabular(g, target="y", groups=["g"])
    # with --decimal ',', a cell with a dot is not silently a number (1.234 = 1234 there)
    with pytest.raises(DatasetError, match=r"row 2: '1\.5'"):
        coerce_numeric(pd.DataFrame({"v": ["0,5", "1.5"] + ["2,5"] * 10}), decimal=",")
    # ... nor a column of dotted numbers (silently text, one feature per value, otherwise)
    dots = tmp_path / "dots.csv"
    df.to_csv(dots, sep=";", index=False)
    line = _err(_show("--data", dots, "--target", "y", "--group", "sex", "--decimal", ","))
    assert "column 'a' holds numbers written with a dot" in line and "drop --decimal ," in line
    # a header-less file whose every number has a decimal comma: ',' is not sniffed as the
    # delimiter once --decimal ',' is given
    bare = tmp_path / "bare.txt"
    bare.write_text("".join(f"{i},5;{i},25;{i % 2};{'FM'[i % 2]}\n" for i in range(40)))
    c = load_tabular(bare, target="y", groups=["sex"],
                     read=ReadOptions(names=("u", "v", "y", "sex"), decimal=","))
    assert c.X["u"].tolist()[:2] == [0.5, 1.5] and c.X["v"].tolist()[1] == 1.25


# 4. external validation maps the target by value -------------------------------------------

def _sites(tmp_path):
    train, sick = tmp_path / "train.csv", tmp_path / "sick.csv"
    _frame(160, 1).to_csv(train, index=False)
    t = _frame(120, 2)
    t.assign(y=np.where(t.y == 1, "sick", "well")).to_csv(sick, index=False)
    return train, sick, t.y.to_numpy()


def test_external_target_is_mapped_by_value_never_by_sort_order(tmp_path):
    train, sick, truth = _sites(tmp_path)
    src = DataSource(data=train, target="y", group=["sex"], test_data=sick)
    cohort = src.load()
    assert cohort.meta["target_classes"] == ["0", "1"]
    with pytest.raises(TargetError, match=r"value\(s\) \['sick', 'well'\].*"
                                          r"--test-target 'y==VALUE'"):
        src.load_external(cohort)
    src.test_target = "y==sick"
    ext = src.load_external(cohort)
    assert (ext.y.to_numpy() == truth).all()              # sick -> 1 (sort order: well)
    # the same values written as floats map by value; an unknown value is refused
    floats = tmp_path / "floats.csv"
    _frame(120, 2).astype({"y": float}).to_csv(floats, index=False)
    ext = DataSource(data=train, target="y", group=["sex"], test_data=floats
                     ).load_external(cohort)
    assert (ext.y.to_numpy() == truth).all()
    other = tmp_path / "other.csv"
    _frame(120, 2).assign(y=lambda d: d.y + 1).to_csv(other, index=False)
    with pytest.raises(TargetError, match=r"value\(s\) \['2'\]"):
        DataSource(data=train, target="y", group=["sex"], test_data=other
                   ).load_external(cohort)


def test_external_target_on_the_command_line(tmp_path):
    train, sick, _ = _sites(tmp_path)
    args = ["personalize", "--data", str(train), "--target", "y", "--group", "sex",
            "--test-data", str(sick), *FAST]
    line = _err(runner.invoke(app, args))
    assert "--test-target 'y==VALUE'" in line and "'sick', 'well'" in line
    res = runner.invoke(app, [*args, "--test-target", "y==sick"])
    assert res.exit_code == 0, res.output
    assert "External validation" in res.stdout
    line = _err(runner.invoke(app, ["personalize", "--data", str(train), "--target", "y",
                                    "--group", "sex", "--test-target", "y==1", *FAST]))
    assert "--test-target describes the target of --test-data" in line


# 5. copied rows and repeated ids ------------------------------------------------------------

def test_copied_rows_and_repeated_patient_ids_are_warned(tmp_path):
    df = _frame(60).assign(patient_id=np.arange(60))
    twice = pd.concat([df, df], ignore_index=True)
    path = tmp_path / "twice.csv"
    twice.to_csv(path, index=False)
    c = load_tabular(path, target="y", groups=["sex"])
    w = " ".join(c.meta["warnings"])
    assert "60 row(s) are exact copies of an earlier row (e.g. row 61 repeats row 1)" in w
    assert "'patient_id' looks like a patient id and repeats (60 ids on 120 rows)" in w
    assert "--patient patient_id" in w
    assert "patient_id" in c.X.columns or "patient_id" in c.meta["excluded_auto"]
    p = load_tabular(path, target="y", groups=["sex"], patient="patient_id")
    assert p.split_by.tolist() == twice["patient_id"].tolist()
    assert "patient_id" not in p.X.columns
    assert not any("copies" in x or "repeats" in x for x in p.meta["warnings"])
    gap = twice.astype({"patient_id": object})
    gap.loc[4, "patient_id"] = None
    with pytest.raises(NoharmError, match=r"patient id 'patient_id' is missing on 1 row\(s\) "
                                          r"\(rows 5\)"):
        load_tabular(gap, target="y", groups=["sex"], patient="patient_id")
    clean = tmp_path / "clean.csv"
    df.to_csv(clean, index=False)
    assert not any("copies" in x or "repeats" in x
                   for x in load_tabular(clean, target="y", groups=["sex"]).meta["warnings"])
    res = _show("--data", path, "--target", "y", "--group", "sex", "--patient", "patient_id")
    assert res.exit_code == 0, res.output
    assert "60 patients" in res.stdout
    # a site column (few values) named like an id is no patient id
    sites = df.assign(site_id=np.arange(60) % 3)
    assert not any("site_id" in x for x in load_tabular(
        sites, target="y", groups=["sex"]).meta["warnings"])


# 6. overflowing numbers -------------------------------------------------------------------

@pytest.mark.parametrize("column, value", [("los", 1e308), ("a", 1e39), ("a", "inf")])
def test_a_value_beyond_float32_is_refused_with_its_cell(tmp_path, column, value):
    df = _frame().assign(los=lambda d: d.a * 2 + 5).astype({column: object})
    df.loc[7, column] = value
    path = tmp_path / "big.csv"
    df.to_csv(path, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        res = runner.invoke(app, ["personalize", "--data", str(path), "--target", "los",
                                  "--task", "regression", "--group", "sex", *FAST,
                                  "--models", "generic,linreg"])
    line = _err(res)
    assert f"column '{column}' has a value too large to compute with (row 8:" in line
    assert "RuntimeWarning" not in res.output
    df.loc[7, column] = 1e37                    # large but within float32: fine
    assert len(load_tabular(df, target="los", groups=["sex"], task="regression")) == 120


# 7. header names with spaces ----------------------------------------------------------------

def test_header_spaces_are_stripped_with_a_note(tmp_path):
    path = tmp_path / "spaces.csv"
    _frame().rename(columns={"y": " outcome ", "sex": "sex  "}).to_csv(path, index=False)
    c = load_tabular(path, target="outcome", groups=["sex"], exclude=["a "])
    assert "a" not in c.X.columns and c.meta["target"] == "outcome"
    note = [w for w in c.meta["warnings"] if "spaces around them" in w]
    assert len(note) == 1 and "'outcome '" in note[0] and "'sex  '" in note[0]
    assert "read as 'sex', 'outcome'" in note[0]
    res = _show("--data", path, "--target", "outcome", "--group", "sex")
    assert res.exit_code == 0, res.output
    clash = tmp_path / "clash.csv"
    clash.write_text("a,a ,y,sex\n1,2,0,F\n3,4,1,M\n")
    line = _err(_show("--data", clash, "--target", "y", "--group", "sex"))
    assert "'a' and 'a '" in line


# 8. truncated gzip ----------------------------------------------------------------------------

def test_a_truncated_gzip_file_is_one_error_line(tmp_path):
    body = _frame(2000).to_csv(index=False).encode()
    whole = gzip.compress(body)
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(whole[: len(whole) // 2])
    line = _err(_show("--data", path, "--target", "y", "--group", "sex"))
    assert "cut.csv.gz" in line and "truncated or corrupt" in line
    path.write_bytes(b"not gzip at all" * 10)
    assert "truncated or corrupt" in _err(_show("--data", path, "--target", "y",
                                                "--group", "sex"))


# 9. property test of the reader --------------------------------------------------------------

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies


@hypothesis.settings(max_examples=30, deadline=None,
                     suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture])
@hypothesis.given(
    values=st.lists(st.lists(st.integers(-99999, 99999), min_size=3, max_size=3),
                    min_size=3, max_size=8),
    sep=st.sampled_from([",", ";", "\t", "|"]), mark=st.sampled_from([".", ","]),
    tell=st.booleans(), code=st.sampled_from(["?", "NA", "-1e9", "."]),
    holes=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 2)), max_size=4),
    pad=st.sampled_from(["", " ", "  "]))
def test_reader_reads_back_the_numbers_or_refuses(tmp_path, values, sep, mark, tell, code,
                                                  holes, pad):
    """Random delimiters, decimal marks, missing codes and header spaces: the reader
    gives back the numbers written (NaN for the missing code) or a NoharmError."""
    if sep == mark:
        sep = ";"
    truth = np.array(values, dtype=float) / 100
    for r, c in holes:
        if r < len(truth):
            truth[r, c] = np.nan
    names = ["p", "q", "r"]
    lines = [sep.join(f"{pad}{n}{pad}" for n in names)]
    for row in truth:
        lines.append(sep.join(code if np.isnan(v) else f"{v:.2f}".replace(".", mark)
                              for v in row))
    path = tmp_path / "prop.csv"
    path.write_text("\n".join(lines) + "\n")
    opts = ReadOptions(sep=sep if sep == "|" else None, na_values=(code,),
                       decimal=mark if tell else ".")
    try:
        frame = coerce_numeric(read_table(path, opts), decimal=opts.decimal)
    except NoharmError as exc:
        hypothesis.event(f"refused: {str(exc).split(';')[0][:40]}")
        return
    hypothesis.event("read back")
    assert list(frame.columns) == names
    got = frame.to_numpy(dtype=float)
    assert got.shape == truth.shape
    np.testing.assert_allclose(got, truth, equal_nan=True)


def test_predict_reads_new_files_with_the_training_decimal_mark(tmp_path):
    """A model trained on a European export (--sep ';' --decimal ,) reads new files of
    the same kind without being told again."""
    from typer.testing import CliRunner

    from noharm.cli import app
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=200).round(3), "b": rng.normal(size=200).round(3),
                       "sex": rng.integers(0, 2, 200)})
    df["y"] = (df["a"] + rng.normal(size=200) > 0).astype(int)
    (tmp_path / "eu.csv").write_text(df.to_csv(sep=";", decimal=",", index=False))
    (tmp_path / "new.csv").write_text(df.drop(columns="y").head(20).to_csv(
        sep=";", decimal=",", index=False))
    r = CliRunner().invoke(app, ["personalize", "--data", str(tmp_path / "eu.csv"),
                                 "--sep", ";", "--decimal", ",", "--target", "y",
                                 "--group", "sex", "--models", "logreg,hgb", "--seeds", "1",
                                 "--folds", "2", "--output", str(tmp_path / "run"), "--quiet"])
    assert r.exit_code == 0, r.output
    p = CliRunner().invoke(app, ["predict", "--model",
                                 str(tmp_path / "run/models/guarded/split0"),
                                 "--data", str(tmp_path / "new.csv"),
                                 "--out", str(tmp_path / "p.csv")])
    assert p.exit_code == 0, p.output
    out = pd.read_csv(tmp_path / "p.csv")
    assert len(out) == 20 and out["p"].between(0, 1).all()
