import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import noharm
from noharm.cli import app
from noharm.experiments import Plan

from conftest import one_error_line, runner_error as _err

runner = CliRunner()
FAST = ["--seeds", "1", "--folds", "3", "--max-epochs", "5", "--patience", "2",
        "--hidden-layers", "2", "--hidden-units", "8", "--attr-layers", "2"]


def test_personalize_synthetic_default_writes_outputs(tmp_path):
    out = tmp_path / "out"
    res = runner.invoke(app, ["personalize", "--n-samples", "200", "--output", str(out),
                              *FAST])
    assert res.exit_code == 0, res.output
    assert "old_female" in res.stdout and "Guard certificate" in res.stdout and "cond-bias" in res.stdout
    assert {p.name for p in out.iterdir()} == {"results.csv", "summary.csv", "summary.md",
                                               "config.json", "splits.json", "models",
                                               "results.db", "calibration.csv"}
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["options"]["n_seeds"] == 1 and cfg["cohort"] == "synthetic"
    assert cfg["study"] == "personalization" and cfg["noharm_version"] == noharm.__version__
    assert len(cfg["data_sha256"]) == 64 and cfg["plan_sha256"] == Plan.load(
        out / "splits.json").sha256
    assert cfg["command"].startswith("noharm") and cfg["date"].startswith("20")
    tidy = pd.read_csv(out / "results.csv")
    assert list(tidy.columns) == ["study", "model", "outer_split", "seed", "fold", "role",
                                  "subgroup", "metric", "value", "n"]
    again = runner.invoke(app, ["personalize", "--n-samples", "200", "--output", str(out),
                                *FAST])
    assert again.exit_code == 0 and "resuming: 5 of 5 tasks" in again.stderr
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv"), tidy)


def test_run_user_csv(tmp_path):
    rng = np.random.default_rng(0)
    n = 120
    df = pd.DataFrame({"age": rng.integers(20, 90, n), "sex": rng.choice(["F", "M"], n),
                       "bp": rng.normal(size=n)})
    df["outcome"] = (df["bp"] + (df["age"] > 60) > 0.5).astype(int)
    path = tmp_path / "my.csv"
    df.to_csv(path, index=False)
    res = runner.invoke(app, ["personalize", "--data", str(path), "--target", "outcome",
                              "--group", "age:60", "--group", "sex", "--models",
                              "generic,conditional-bias", *FAST])
    assert res.exit_code == 0, res.output
    assert "age>=60_F" in res.stdout


@pytest.mark.parametrize("args, needle", [
    (["personalize", "--dataset", "nope"], "unknown dataset 'nope'"),
    (["personalize", "--data", "/no/such.csv", "--target", "y", "--group", "g"], "does not exist"),
    (["personalize", "--models", "generic,svm"], "unknown model 'svm'"),
    (["personalize", "--training", "both"], "training"),
    (["personalize", "--target", "y"], "--data"),
    (["data", "show", "--dataset", "nope"], "unknown dataset"),
])
def test_bad_inputs_one_line_exit_2(args, needle):
    assert needle in _err(runner.invoke(app, args))


def test_bad_user_files(tmp_path):
    path = tmp_path / "d.csv"
    pd.DataFrame({"g": ["a", "b"] * 10, "x": np.arange(20.0),
                  "y": np.arange(20) % 3}).to_csv(path, index=False)
    base = ["personalize", "--data", str(path), "--group", "g"]
    assert "binary" in _err(runner.invoke(app, [*base, "--target", "y"]))
    assert "'outcome' does not exist" in _err(runner.invoke(app, [*base, "--target",
                                                                 "outcome"]))
    missing = ["personalize", "--data", str(path), "--target", "y", "--group", "race"]
    assert "group column 'race'" in _err(runner.invoke(app, missing))


def test_heart_checksum_failure(tmp_path):
    bad = tmp_path / "processed.cleveland.data"
    bad.write_text("1,2,3\n")
    msg = _err(runner.invoke(app, ["personalize", "--dataset", "heart", "--data-path", str(bad)]))
    assert "checksum" in msg


def test_console_script_runs():
    res = subprocess.run([sys.executable, "-m", "noharm.cli", "data", "show", "--dataset",
                          "heart"], capture_output=True, text=True)
    assert res.returncode == 0 and "young_male 149" in res.stdout, res.stderr


def test_audit_bounds_cli():
    res = runner.invoke(app, ["audit", "bounds", "--n", "8e9", "--eps", "0.01", "--sigma",
                              "0.1", "--k", "20"])
    assert res.exit_code == 0, res.output
    assert "k_max (categorical) = 17.97" in res.stdout
    assert "k_max (gaussian) = 22.30" in res.stdout
    assert "| 18 | 262144 |" in res.stdout


def test_audit_bounds_huge_n_answers_fast_with_a_short_table():
    """n = 1e308 from the shell: well under a second (measured 0.6-0.7 s; 2 s allows for a
    loaded CI machine) and a table of k = 1..12 plus the rows around k_max, not 1006."""
    import time
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "noharm.cli", "audit", "bounds", "--n",
                          "1e308", "--eps", "0.01"], capture_output=True, text=True, check=True)
    assert time.perf_counter() - t < 2.0
    rows = [ln for ln in out.stdout.splitlines() if ln.startswith("| ") and "---" not in ln]
    assert len(rows) == 1 + 12 + 7                       # header, 1..12, 1000..1006
    assert "| 1002 | 2^1002 | 0.0000 |" in out.stdout and "| 1003 | 2^1003 | 1.0000 |" in out.stdout
    assert "k_max (categorical) = 1002.43" in out.stdout


@pytest.mark.parametrize("args, needle", [
    (["--n", "100", "--eps", "0"], "eps must be"),
    (["--n", "0.5", "--eps", "0.1"], "n must be >= 1"),
    (["--n", "10", "--eps", "0.1", "--k", "6"], "groups would be empty"),
    (["--n", "100", "--eps", "0.1", "--sigma", "-1"], "sigma"),
])
def test_audit_bounds_bad_inputs(args, needle):
    assert needle in _err(runner.invoke(app, ["audit", "bounds", *args]))


def test_run_with_the_guard_then_audit_from_dir(tmp_path):
    out, aud = tmp_path / "run", tmp_path / "audit"
    res = runner.invoke(app, ["run", "--n-samples", "200", "--models",
                              "generic,conditional-bias", "--output", str(out),
                              *FAST, "--folds", "3"])
    assert "`noharm run` is now `noharm personalize`" in res.stderr
    assert res.exit_code == 0, res.output
    assert "Guard certificate" in res.stdout and "acc. gain [95 % CI]" in res.stdout
    assert (out / "models" / "conditional-bias" / "split0" / "model.safetensors").is_file()
    from noharm.models import GuardedClassifier
    g = GuardedClassifier.load(out / "models" / "guarded" / "split0")
    assert set(g.routing_) == {"old_female", "old_male", "young_female", "young_male"}
    res = runner.invoke(app, ["audit", "--from", str(out), "--output", str(aud),
                              "--n-boot", "100", "--method", "saliency"])
    assert res.exit_code == 0, res.output
    assert "sufficiency[saliency]" in res.stdout and "P_e lower bound" in res.stdout
    assert {p.name for p in aud.iterdir()} == {"audit.csv", "audit.md", "forest.png",
                                               "reliability.json"}
    assert (aud / "forest.png").read_bytes()[:4] == b"\x89PNG"
    audit = pd.read_csv(aud / "audit.csv")
    assert set(audit["verdict"]) <= {"helps", "harms", "cannot tell"}
    assert "decoupled" in _err(runner.invoke(app, ["audit", "--from", str(out),
                                                   "--personalized", "decoupled"]))


def test_audit_trains_when_no_models_given(tmp_path):
    res = runner.invoke(app, ["audit", "--n-samples", "200", "--seeds", "1", "--folds", "3",
                              "--n-boot", "50", "--no-explain", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "zero_one" in res.stdout and "sufficiency" not in res.stdout


def test_audit_bad_inputs(tmp_path):
    assert "not the --output" in _err(runner.invoke(app, ["audit", "--from", str(tmp_path)]))
    assert "--method" in _err(runner.invoke(app, ["audit", "--method", "shap"]))


def test_usage_errors_are_one_line_too():
    res = subprocess.run([sys.executable, "-m", "noharm.cli", "personalize", "--seeds", "abc"],
                         capture_output=True, text=True)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--seeds" in lines[0]


def test_debias_cli(tmp_path):
    out = tmp_path / "deb"
    res = runner.invoke(app, ["debias", "--n-samples", "400", "--protected", "sex",
                              "--outer-splits", "1", "--methods",
                              "pruning,reject_option,eq_odds", "--max-epochs", "10",
                              "--hidden-layers", "2", "--hidden-units", "16", "--output",
                              str(out)])
    assert res.exit_code == 0, res.output
    for m in ("original", "pruning", "reject_option", "eq_odds"):
        assert f"| {m} |" in res.stdout
    assert {p.name for p in out.iterdir()} == {"results.db", "results.csv", "summary.csv",
                                               "summary.md", "config.json", "splits.json"}
    tidy = pd.read_csv(out / "results.csv")
    assert set(tidy["model"]) == {"original", "pruning", "reject_option", "eq_odds"}
    assert {"balanced_accuracy", "bias", "objective"} <= set(tidy["metric"])
    assert "seconds" not in set(tidy["metric"])       # timings are not results
    assert "pruning (s per network)" in res.stderr


@pytest.mark.parametrize("args, needle", [
    (["--protected", "race"], "not a group attribute"),
    (["--metric", "aod"], "metric"),
    (["--methods", "magic"], "unknown method 'magic'"),
    (["--protected", "sex", "--privileged", "other"], "does not occur"),
])
def test_debias_bad_inputs(args, needle):
    assert needle in _err(runner.invoke(app, ["debias", "--n-samples", "200", *args]))


def test_unknown_options_are_one_line(cli_main):
    for args, needle in ((["debias", "--folds", "2"], "No such option: --folds"),
                         (["fairness", "--outer-splits", "7", "--folds", "9"],
                          "No such option: --folds"),
                         (["fairness", "--harm-guard"], "No such option: --harm-guard"),
                         (["fairness", "--ensemble-size", "3"], "--ensemble-size"),
                         (["fairness", "--lr", "5"], "No such option: --lr"),
                         (["personalize", "--sensitive", "age"], "No such option"),
                         (["personalize", "--clusters", "site"], "No such option"),
                         (["mixed", "--harm-guard"], "No such option: --harm-guard")):
        assert needle in one_error_line(cli_main(args)), args


def test_fairness_study(tmp_path):
    out = tmp_path / "fair"
    res = runner.invoke(app, ["fairness", "--n-samples", "400", "--sensitive", "age,sex",
                              "--outer-splits", "2", "--max-epochs", "5", "--hidden-layers",
                              "2", "--hidden-units", "8", "--output", str(out)])
    assert res.exit_code == 0, res.output
    assert "| age | eod_gap |" in res.stdout and "reduction" in res.stdout
    assert "seconds_per_epoch" not in res.stdout and "fairgrad (s per epoch)" in res.stderr
    tidy = pd.read_csv(out / "results.csv")
    assert {"eod_gap", "eqodds_gap", "accuracy", "auroc", "conflict_share"} <= set(tidy.metric)
    assert set(tidy.outer_split) == {0, 1}
    chosen = tidy[tidy.metric == "fairness_weight"]
    assert len(chosen) == 2 and set(chosen.value) <= {0.0, 0.03, 0.1, 0.3, 1.0}
    assert "weights auto" in res.stdout


@pytest.mark.parametrize("args, needle", [
    (["--sensitive", "race"], "not a group attribute"),
    (["--models", "decoupled,fairgrad"], "unknown model 'decoupled' for the fairness study"),
    (["--fairness-loss", "dp"], "--fairness-loss must be one of"),
    (["--sensitive", "age,sex", "--fairness-weights", "1"], "2 sensitive attributes"),
    (["--fairness-weights", "best"], "--fairness-weights must be comma-separated numbers"),
    (["--auroc-tolerance", "0.7"], "--auroc-tolerance=0.7: give a number in [0, 0.5)"),
])
def test_fairness_bad_inputs(args, needle):
    assert needle in _err(runner.invoke(app, ["fairness", "--n-samples", "200", *args]))


def test_version():
    res = subprocess.run([sys.executable, "-m", "noharm.cli", "--version"],
                         capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip() == f"noharm {noharm.__version__}"


def test_unclear_inputs_get_their_own_message(tmp_path):
    header_only = tmp_path / "h.csv"
    header_only.write_text("age,sex,y\n")
    base = ["personalize", "--target", "y", "--group", "sex"]
    assert "header but no rows" in _err(runner.invoke(app, [*base, "--data",
                                                            str(header_only)]))
    assert "is a directory" in _err(runner.invoke(app, [*base, "--data", str(tmp_path)]))
    assert "--hidden-layers must be" in _err(runner.invoke(app, ["personalize",
                                                               "--hidden-layers", "0"]))
