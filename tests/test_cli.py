import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from noharm.cli import app

runner = CliRunner()
FAST = ["--seeds", "1", "--folds", "2", "--max-epochs", "5", "--patience", "2",
        "--hidden-layers", "2", "--hidden-units", "8", "--attr-layers", "2"]


def _err(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.stderr.strip().splitlines() if ln]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def test_run_synthetic_default_writes_outputs(tmp_path):
    out = tmp_path / "out"
    res = runner.invoke(app, ["run", "--n-samples", "200", "--output", str(out), *FAST])
    assert res.exit_code == 0, res.output
    assert "old_female" in res.stdout and "gain conditional bias" in res.stdout
    assert {p.name for p in out.iterdir()} == {"results.csv", "summary.csv", "summary.md",
                                               "config.json"}
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["protocol"]["n_seeds"] == 1 and cfg["cohort"]["name"] == "synthetic"
    tidy = pd.read_csv(out / "results.csv")
    assert {"model", "outer_split", "seed", "fold", "group", "n", "metric", "value"} <= set(tidy)
    again = runner.invoke(app, ["run", "--n-samples", "200", "--output", str(out), *FAST])
    assert "--overwrite" in _err(again)


def test_run_user_csv(tmp_path):
    rng = np.random.default_rng(0)
    n = 120
    df = pd.DataFrame({"age": rng.integers(20, 90, n), "sex": rng.choice(["F", "M"], n),
                       "bp": rng.normal(size=n)})
    df["outcome"] = (df["bp"] + (df["age"] > 60) > 0.5).astype(int)
    path = tmp_path / "my.csv"
    df.to_csv(path, index=False)
    res = runner.invoke(app, ["run", "--data", str(path), "--target", "outcome",
                              "--group", "age:60", "--group", "sex", "--models",
                              "generic,conditional-bias", *FAST])
    assert res.exit_code == 0, res.output
    assert "age>=60_F" in res.stdout


@pytest.mark.parametrize("args, needle", [
    (["run", "--dataset", "nope"], "unknown dataset 'nope'"),
    (["run", "--data", "/no/such.csv", "--target", "y", "--group", "g"], "does not exist"),
    (["run", "--models", "generic,svm"], "unknown model 'svm'"),
    (["run", "--training", "both"], "--training"),
    (["run", "--target", "y"], "--data"),
    (["data", "show", "--dataset", "nope"], "unknown dataset"),
])
def test_bad_inputs_one_line_exit_2(args, needle):
    assert needle in _err(runner.invoke(app, args))


def test_bad_user_files(tmp_path):
    path = tmp_path / "d.csv"
    pd.DataFrame({"g": ["a", "b"] * 10, "x": np.arange(20.0),
                  "y": np.arange(20) % 3}).to_csv(path, index=False)
    base = ["run", "--data", str(path), "--group", "g"]
    assert "binary" in _err(runner.invoke(app, [*base, "--target", "y"]))
    assert "'outcome' does not exist" in _err(runner.invoke(app, [*base, "--target",
                                                                 "outcome"]))
    missing = ["run", "--data", str(path), "--target", "y", "--group", "race"]
    assert "group column 'race'" in _err(runner.invoke(app, missing))


def test_heart_checksum_failure(tmp_path):
    bad = tmp_path / "processed.cleveland.data"
    bad.write_text("1,2,3\n")
    msg = _err(runner.invoke(app, ["run", "--dataset", "heart", "--data-path", str(bad)]))
    assert "checksum" in msg


def test_console_script_runs():
    res = subprocess.run([sys.executable, "-m", "noharm.cli", "data", "show", "--dataset",
                          "heart"], capture_output=True, text=True)
    assert res.returncode == 0 and "young_male 149" in res.stdout, res.stderr
