"""Issue 29, the commands of a new user's first ten minutes: each case works or ends in
one ``error:`` line (exit 2) that names the problem and the fix."""
import json
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from noharm.cli import app

from conftest import runner_error as _err

runner = CliRunner()
NAMES = ["age", "bp", "chol", "sex", "num"]      # the training file has no header row
SMALL = ["--seeds", "1", "--folds", "2", "--max-epochs", "2", "--hidden-layers", "1",
         "--hidden-units", "8", "--quiet"]


def _frame(n: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"age": rng.integers(30, 80, n), "bp": rng.normal(130, 15, n).round(),
                       "chol": rng.normal(240, 40, n).round(), "sex": rng.integers(0, 2, n)})
    df["num"] = ((df.age - 55) / 10 + (df.chol - 240) / 40 + rng.normal(0, 1, n) > 0) * 2
    return df


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A personalize run on a header-less file read with --names (as the Cleveland file),
    its guarded model exported: DIR/models/{generic,conditional-bias,logreg,guarded}."""
    tmp = tmp_path_factory.mktemp("first10")
    data = tmp / "train.data"
    _frame().to_csv(data, header=False, index=False)
    out = tmp / "run"
    res = runner.invoke(app, ["personalize", "--data", str(data), "--names", ",".join(NAMES),
                              "--target", "num>0", "--group", "age:60", "--group", "sex",
                              "--models", "generic,conditional-bias,logreg",
                              "--output", str(out), *SMALL])
    assert res.exit_code == 0, res.output
    assert (out / "models" / "guarded" / "split0" / "guard.json").is_file()
    return out


# ------------------------------------------------------------------ 1. predict
@pytest.mark.parametrize("model", ["guarded", "generic", "logreg"])
def test_predict_reads_a_headered_file_without_the_target(run_dir, tmp_path, model):
    new = _frame(12, seed=1)
    features = new.drop(columns="num")
    features[["chol", "age", "sex", "bp"]].to_csv(tmp_path / "new.csv", index=False)  # any order
    features.to_csv(tmp_path / "bare.data", header=False, index=False)   # no header, no target
    new.to_csv(tmp_path / "full.data", header=False, index=False)        # the training layout
    ps = []
    for name in ("new.csv", "bare.data", "full.data"):
        out = tmp_path / f"p_{name}.csv"
        res = runner.invoke(app, ["predict", "--model", str(run_dir / "models" / model /
                                                            "split0"),
                                  "--data", str(tmp_path / name), "--out", str(out)])
        assert res.exit_code == 0, (name, res.output)
        ps.append(pd.read_csv(out)["p"].to_numpy())
    assert len(ps[0]) == 12
    np.testing.assert_allclose(ps[0], ps[1], rtol=1e-6)       # the same rows, read alike
    np.testing.assert_allclose(ps[0], ps[2], rtol=1e-6)


def test_predict_names_a_headerless_file_of_another_width(run_dir, tmp_path):
    _frame(5).iloc[:, :3].to_csv(tmp_path / "three.data", header=False, index=False)
    msg = _err(runner.invoke(app, ["predict", "--model", str(run_dir / "models" / "generic" /
                                                          "split0"),
                                   "--data", str(tmp_path / "three.data"),
                                   "--out", str(tmp_path / "p.csv")]))
    assert "three.data is not a header" in msg and "has 3 columns" in msg
    assert "add a header row" in msg and "--names" in msg


def test_guard_json_routing_to_an_unknown_model_is_one_line(run_dir, tmp_path):
    from noharm.models.persistence import write_checksums
    d = tmp_path / "models" / "guarded" / "split0"
    shutil.copytree(run_dir / "models" / "guarded" / "split0", d)
    shutil.copy(run_dir / "models" / "features.json", tmp_path / "models")
    doc = json.loads((d / "guard.json").read_text())
    group = sorted(doc["routing"])[0]
    doc["routing"][group] = "nosuchmodel"
    for row in doc["certificate"]:
        if row["group"] == group:
            row["deployed"] = "nosuchmodel"
    (d / "guard.json").write_text(json.dumps(doc))
    args = ["predict", "--model", str(d), "--data", str(tmp_path / "x.csv"),
            "--out", str(tmp_path / "p.csv")]
    _frame(5).to_csv(tmp_path / "x.csv", index=False)
    assert "differs from its checksum" in _err(runner.invoke(app, args))
    write_checksums(d)                                   # an edit that recomputes them
    msg = _err(runner.invoke(app, args))
    assert "routing names unknown model(s) ['nosuchmodel']" in msg


def test_a_deleted_guarded_folder_says_how_to_get_it_back(run_dir, tmp_path):
    d = tmp_path / "run"
    shutil.copytree(run_dir, d)
    shutil.rmtree(d / "models" / "guarded")
    _frame(5).to_csv(tmp_path / "x.csv", index=False)
    args = ["predict", "--model", str(d / "models" / "guarded" / "split0"),
            "--data", str(tmp_path / "x.csv"), "--out", str(tmp_path / "p.csv")]
    msg = _err(runner.invoke(app, args))
    assert "was not exported or was deleted; run the same `noharm personalize`" in msg
    assert "models/logreg/split0" in msg and "in parts" not in msg
    (d / "models" / "generic" / "split0-part1").mkdir()             # a model saved in parts
    assert "saved in parts" in _err(runner.invoke(app, args))


def test_predict_with_a_model_of_a_built_in_dataset_says_what_to_do(tmp_path):
    out = tmp_path / "run"
    res = runner.invoke(app, ["personalize", "--n-samples", "120", "--models", "generic",
                              "--no-guard", "--output", str(out), *SMALL])
    assert res.exit_code == 0, res.output
    _frame(5).to_csv(tmp_path / "x.csv", index=False)
    msg = _err(runner.invoke(app, ["predict", "--model", str(out / "models" / "generic" /
                                                          "split0"),
                                   "--data", str(tmp_path / "x.csv"),
                                   "--out", str(tmp_path / "p.csv")]))
    assert "was trained on the built-in dataset synthetic" in msg
    assert "train on a file instead (noharm personalize --data FILE" in msg


# ------------------------------------------------------------------ 2. report
def test_report_never_replaces_a_file_it_did_not_write(run_dir, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    msg = _err(runner.invoke(app, ["report", str(run_dir), "--out", str(notes)]))
    assert f"{notes} exists and is not a report noharm wrote" in msg
    assert "--out another path" in msg and "delete" in msg
    assert notes.read_text() == "my notes"
    own = run_dir / "report.html"
    own.write_text("<html>my own report</html>")
    msg = _err(runner.invoke(app, ["report", str(run_dir)]))
    assert f"{own} exists" in msg
    assert own.read_text() == "<html>my own report</html>"
    own.unlink()
    for _ in range(2):                                   # noharm's own report is replaced
        res = runner.invoke(app, ["report", str(run_dir)])
        assert res.exit_code == 0, res.output
    assert 'name="generator" content="noharm report' in own.read_text()
    own.unlink()


def test_a_report_of_an_older_noharm_is_recognised(tmp_path):
    from noharm.report.html import _CSS, written_by_noharm
    old = tmp_path / "old.html"
    old.write_text('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>noharm '
                   f"report: run</title><style>{_CSS}</style></head><body></body></html>\n")
    assert written_by_noharm(old)
    old.write_text('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>mine'
                   "</title></head></html>")
    assert not written_by_noharm(old)


# ------------------------------------------------------------------ 3. tracebacks
def test_an_attribute_with_too_many_values_for_the_split(tmp_path):
    rng = np.random.default_rng(0)
    n = 150
    pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n), "site": np.arange(n) % 50,
                  "y": rng.integers(0, 2, n)}).to_csv(tmp_path / "f.csv", index=False)
    msg = _err(runner.invoke(app, ["fairness", "--data", str(tmp_path / "f.csv"), "--target",
                                   "y", "--group", "site", "--outer-splits", "1",
                                   "--max-epochs", "1"]))
    assert "the group attribute site has too many values for the split: 50 values" in msg
    assert "--group site:" in msg


def test_debias_with_an_empty_metadata_file(tmp_path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "empty.csv").write_bytes(b"")
    args = ["debias", "--images", str(tmp_path / "imgs"), "--target", "y", "--protected",
            "sex", "--metadata"]
    msg = _err(runner.invoke(app, [*args, str(tmp_path / "empty.csv")]))
    assert "empty.csv is empty; it needs a header row" in msg
    (tmp_path / "head.csv").write_text("file,y,sex\n")
    assert "has a header but no rows" in _err(runner.invoke(app, [*args,
                                                                  str(tmp_path / "head.csv")]))
    assert "is a directory" in _err(runner.invoke(app, [*args, str(tmp_path / "imgs")]))


# ------------------------------------------------------------------ 4. messages
def test_config_naming_a_directory_and_yaml_exponents(tmp_path):
    msg = _err(runner.invoke(app, ["personalize", "--config", str(tmp_path)]))
    assert "is a directory; give the YAML file itself" in msg
    cfg = tmp_path / "exp.yaml"
    cfg.write_text("lr: 1e-3\nguard-alpha: 5e-2\n")          # YAML 1.1 reads these as text
    res = runner.invoke(app, ["personalize", "--config", str(cfg), "--print-config"])
    assert res.exit_code == 0, res.output
    assert "lr: 0.001" in res.stdout and "guard-alpha: 0.05" in res.stdout
    cfg.write_text("lr: fast\n")
    assert "lr must be a number, got 'fast'" in _err(
        runner.invoke(app, ["personalize", "--config", str(cfg)]))


def _mixed(tmp_path, clusters, *extra):
    rng = np.random.default_rng(0)
    n = 200
    pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n), "pid": np.arange(n),
                  "sex": rng.integers(0, 2, n), "y": rng.integers(0, 2, n)}
                 ).to_csv(tmp_path / "c.csv", index=False)
    return _err(runner.invoke(app, ["mixed", "--data", str(tmp_path / "c.csv"), "--target",
                                    "y", "--group", "sex", "--clusters", clusters,
                                    "--outer-splits", "1", "--max-epochs", "1", *extra]))


def test_mixed_clusters_messages_say_the_actual_condition(tmp_path):
    assert "clusters 'pid' was left out when the file was read" in _mixed(tmp_path, "pid")
    assert "clusters 'pid' has a different value on every row" in _mixed(
        tmp_path, "pid", "--keep", "pid")
    msg = _mixed(tmp_path, "sex")                 # two clusters of ~100 rows: too LARGE
    assert "with --unseen-share 0.1 a held-out cluster may have at most 60 rows" in msg
    assert "raise --unseen-share to 0.1" in msg and "--unseen-share 0" in msg
    assert "too small" not in msg and "np.int" not in msg


def test_a_deleted_model_folder_is_not_called_saved_in_parts(run_dir, tmp_path):
    d = tmp_path / "run"
    shutil.copytree(run_dir, d)
    shutil.rmtree(d / "models" / "generic" / "split0")
    msg = _err(runner.invoke(app, ["audit", "--from", str(d), "--no-explain"]))
    assert "generic/split0 is missing" in msg and "--force-new" in msg
    assert "in parts" not in msg
    (d / "models" / "generic" / "split0-part0").mkdir()          # a run saved in parts
    assert "in parts" in _err(runner.invoke(app, ["audit", "--from", str(d), "--no-explain"]))


def test_the_run_alias_note_honours_quiet():
    res = runner.invoke(app, ["run", "--print-config"])
    assert "`noharm run` is now `noharm personalize`" in res.stderr
    res = runner.invoke(app, ["run", "--quiet", "--print-config"])
    assert res.exit_code == 0 and res.stderr == ""


def test_no_numpy_warning_before_the_beyond_float32_error(run_dir, tmp_path):
    df = _frame(60)
    df.loc[:2, "chol"] = 1e300
    df.to_csv(tmp_path / "big.csv", index=False)
    df.drop(columns="num").to_csv(tmp_path / "new.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)       # a warning would be a traceback
        msg = _err(runner.invoke(app, ["fairness", "--data", str(tmp_path / "big.csv"),
                                       "--target", "num>0", "--group", "sex",
                                       "--outer-splits", "1"]))
        assert "chol" in msg and "float32" in msg          # the column by its own name
        res = runner.invoke(app, ["predict", "--model", str(run_dir / "models" / "generic" /
                                                            "split0"),
                                  "--data", str(tmp_path / "new.csv"),
                                  "--out", str(tmp_path / "p.csv")])
        assert "float32" in _err(res)


# ------------------------------------------------------------------ 5. empty lists
@pytest.mark.parametrize("command, option", [
    (["personalize"], "--models"), (["fairness"], "--models"), (["fairness"], "--sensitive"),
    (["mixed", "--clusters", "site"], "--models"), (["debias"], "--methods")])
def test_an_empty_list_option_is_refused_not_defaulted(command, option):
    msg = _err(runner.invoke(app, [*command, option, ","]))
    assert msg.startswith(f"error: {option} is empty (got ','); give e.g. {option} ")
