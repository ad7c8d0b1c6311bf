"""Every study through the one engine: resume after kill -9, --jobs, output directories,
fingerprints."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import kill_after_tasks, store_tasks, runner_error as _err
from noharm.cli import app
from noharm.datasets import make_synthetic
from noharm.experiments import (DebiasStudy, FairnessStudy, MixedStudy, PersonalizationStudy,
                                RunOptions, run_study)

runner = CliRunner()
NET = ["--max-epochs", "25", "--patience", "25", "--hidden-layers", "2", "--hidden-units",
       "16"]
STUDY_ARGS = {
    "personalize": ["personalize", "--n-samples", "400", "--models", "generic,logreg",
                    "--seeds", "2", "--folds", "3", "--ensemble-size", "1", *NET],
    "fairness": ["fairness", "--n-samples", "600", "--sensitive", "age,sex",
                 "--outer-splits", "3", *NET],
    "mixed": ["mixed", "--models", "generic,medl", "--clusters", "site", "--outer-splits",
              "3", "--unseen-share", "0.15", *NET],
    "debias": ["debias", "--n-samples", "600", "--methods", "pruning,reject_option",
               "--outer-splits", "3", *NET],
}
SAME_FILES = ("results.csv", "summary.csv", "summary.md", "splits.json")


def _args(study, site_csv):
    args = list(STUDY_ARGS[study])
    if study == "mixed":
        args += ["--data", str(site_csv), "--target", "y", "--group", "age:60", "--group", "sex"]
    return args


@pytest.mark.parametrize("study", ["fairness", "mixed", "debias"])
def test_every_study_resumes_after_kill_byte_identical(study, site_csv, tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    args = _args(study, site_csv)
    res = runner.invoke(app, [*args, "--output", str(full), "--quiet", "--jobs", "1"])
    assert res.exit_code == 0, res.output
    total = store_tasks(full / "results.db")
    assert total >= 3
    done = kill_after_tasks([*args, "--output", str(killed), "--quiet", "--jobs", "1"],
                            killed / "results.db", 1)
    assert 1 <= done < total, f"not killed part-way ({done} of {total} tasks)"
    resumed = runner.invoke(app, [*args, "--output", str(killed), "--jobs", "2"])
    assert resumed.exit_code == 0, resumed.output
    assert f"resuming: {done} of {total} tasks" in resumed.stderr
    for name in SAME_FILES:
        assert (full / name).read_bytes() == (killed / name).read_bytes(), name


FAST = dict(hidden_layers=2, hidden_units=8, max_epochs=8, patience=3)


def _site_cohort():
    c = make_synthetic(n_samples=600)
    site = np.random.default_rng(0).integers(0, 6, len(c)).astype(str)
    c.X = c.X.assign(site=pd.Categorical(site).codes.astype(float))
    return c


@pytest.mark.parametrize("study, cohort", [
    (FairnessStudy(outer_splits=2, **FAST), make_synthetic(n_samples=400)),
    (MixedStudy(clusters="site", models=("generic", "medl"), outer_splits=2,
                unseen_share=0.15, **FAST), _site_cohort()),
    (DebiasStudy(methods=("random_perturbation", "reject_option"), outer_splits=2, **FAST),
     make_synthetic(n_samples=400)),
    (PersonalizationStudy(models=("generic", "decoupled", "logreg"), n_seeds=1, n_folds=3,
                          attr_layers=2, **FAST),
     make_synthetic(n_samples=400)),
])
def test_jobs_do_not_change_any_study(study, cohort):
    a = run_study(study, cohort, RunOptions(n_jobs=1))
    b = run_study(study, cohort, RunOptions(n_jobs=2))
    pd.testing.assert_frame_equal(a.results, b.results)
    assert a.text == b.text
    assert set(a.results.columns) >= {"study", "model", "outer_split", "subgroup", "metric"}
    assert (a.results["study"] == study.name).all()


# -- output directories -----------------------------------------------------------------

SMALL = ["personalize", "--n-samples", "200", "--models", "generic", "--seeds", "1",
         "--folds", "3", "--max-epochs", "3", "--hidden-layers", "2", "--hidden-units", "8",
         "--quiet"]


def test_foreign_files_are_refused_and_kept(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "results.csv").write_text("my own results\n")
    (out / "summary.md").write_text("# my notes\n")
    msg = _err(runner.invoke(app, [*SMALL, "--output", str(out)]))
    assert "results.csv" in msg and "noharm did not write" in msg
    msg = _err(runner.invoke(app, [*SMALL, "--output", str(out), "--force-new"]))
    assert "noharm did not write" in msg
    assert (out / "results.csv").read_text() == "my own results\n"
    assert sorted(p.name for p in out.iterdir()) == ["results.csv", "summary.md"]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "data.parquet").write_bytes(b"x")
    assert "data.parquet" in _err(runner.invoke(app, [*SMALL, "--output",
                                                      str(tmp_path / "other")]))


def test_another_studys_directory_is_refused_then_moved_aside(tmp_path):
    out = tmp_path / "o"
    assert runner.invoke(app, [*SMALL, "--output", str(out)]).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    fair = ["fairness", "--n-samples", "300", "--outer-splits", "1", "--max-epochs", "3",
            "--hidden-layers", "2", "--hidden-units", "8", "--quiet", "--output", str(out)]
    msg = _err(runner.invoke(app, fair))
    assert "personalization study" in msg and "--force-new" in msg
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    res = runner.invoke(app, [*fair, "--force-new"])
    assert res.exit_code == 0, res.output
    assert json.loads((out / "config.json").read_text())["study"] == "fairness"
    for name, content in before.items():                       # nothing lost
        (kept,) = out.glob(f"{name}.old-*")
        assert kept.read_bytes() == content
    (old_models,) = out.glob("models.old-*")
    assert sorted(p.name for p in old_models.iterdir()) == ["generic", "guarded"]
    assert sorted(p.name for p in (out / "models").iterdir()) == ["fairgrad", "generic"]


def test_a_second_concurrent_run_is_refused(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    lock = out / ".noharm.lock"
    import socket
    lock.write_text(f"{os.getpid()} {socket.gethostname()}")     # a live holder
    msg = _err(runner.invoke(app, [*SMALL, "--output", str(out)]))
    assert "another noharm run" in msg and str(os.getpid()) in msg
    assert lock.exists() and not (out / "results.db").exists()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock.write_text(f"{dead.pid} {socket.gethostname()}")         # a stale lock
    res = runner.invoke(app, [*SMALL, "--output", str(out)])
    assert res.exit_code == 0, res.output
    assert not lock.exists()


def test_two_processes_into_one_directory(tmp_path):
    """While one run trains, a second run into the same directory is refused in one line
    (before, both trained everything and one ended in sqlite3.IntegrityError)."""
    out = tmp_path / "o"
    long = ["personalize", "--n-samples", "2000", "--models", "generic", "--seeds", "2",
            "--folds", "3", "--max-epochs", "400", "--patience", "400", "--quiet",
            "--output", str(out)]
    first = subprocess.Popen([sys.executable, "-m", "noharm.cli", *long],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (out / ".noharm.lock").exists() and time.time() < deadline:
            time.sleep(0.01)
        second = subprocess.run([sys.executable, "-m", "noharm.cli", *long],
                                capture_output=True, text=True, timeout=300)
        assert first.poll() is None, "the first run ended too early for this test"
    finally:
        first.kill()
        first.wait()
    assert second.returncode == 2
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and f"another noharm run (pid {first.pid})" in lines[0]


@pytest.fixture
def saved_run(tmp_path):
    df = make_synthetic(n_samples=300).X.copy()
    c = make_synthetic(n_samples=300)
    df["outcome"] = c.y.to_numpy()
    df["sexcol"] = c.groups["sex"].to_numpy()
    path = tmp_path / "data.csv"
    df.to_csv(path, index=False)
    out = tmp_path / "run"
    args = ["personalize", "--data", str(path), "--target", "outcome", "--group", "sexcol",
            "--models", "generic,decoupled", "--seeds", "1", "--folds", "3", "--max-epochs",
            "3", "--hidden-layers", "2", "--hidden-units", "8", "--quiet", "--output", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    return path, out, args


def test_audit_refuses_reshuffled_data(saved_run):
    path, out, _ = saved_run
    ok = runner.invoke(app, ["audit", "--from", str(out), "--personalized", "decoupled",
                             "--no-explain", "--n-boot", "20"])
    assert ok.exit_code == 0, ok.output
    df = pd.read_csv(path)
    df.sample(frac=1, random_state=0).to_csv(path, index=False)
    msg = _err(runner.invoke(app, ["audit", "--from", str(out), "--personalized",
                                   "decoupled", "--no-explain"]))
    assert "data of" in msg and "changed" in msg


def test_audit_refuses_stale_models_and_tampered_plan(saved_run):
    _, out, args = saved_run
    res = runner.invoke(app, ["audit", "--from", str(out), "--personalized", "decoupled",
                              "--no-explain", "--n-boot", "20", "--output", str(out)])
    assert res.exit_code == 0, res.output                   # an audit beside its run
    again = runner.invoke(app, args)                        # the run still resumes
    assert again.exit_code == 0, again.output
    other = [a if a != "generic,decoupled" else "generic,conditional-bias" for a in args]
    res = runner.invoke(app, [*other, "--attr-layers", "2", "--force-new"])
    assert res.exit_code == 0, res.output
    assert list(out.glob("models.old-*/decoupled"))               # moved aside, not deleted
    assert list(out.glob("audit.csv.old-*")) and not (out / "audit.csv").exists()
    msg = _err(runner.invoke(app, ["audit", "--from", str(out), "--personalized",
                                   "decoupled", "--no-explain"]))
    assert "no decoupled model" in msg
    plan = json.loads((out / "splits.json").read_text())
    plan["splits"][0]["test"] = plan["splits"][0]["test"][::-1][:10]
    (out / "splits.json").write_text(json.dumps(plan))
    msg = _err(runner.invoke(app, ["audit", "--from", str(out), "--no-explain"]))
    assert "splits.json is not the split plan" in msg
    assert "splits.json is not the split plan" in _err(runner.invoke(app, ["report",
                                                                           str(out)]))


def test_report_refuses_edited_results(saved_run):
    _, out, _ = saved_run
    assert runner.invoke(app, ["report", str(out)]).exit_code == 0
    summary = out / "summary.csv"
    summary.write_text(summary.read_text().replace("generic", "gen"))
    msg = _err(runner.invoke(app, ["report", str(out)]))
    assert "summary.csv is not the file" in msg


def test_run_alias_says_so(cli_main):
    code, _, err = cli_main(["run", "--seeds", "0"])
    assert code == 2 and "--seeds must be an integer >= 1" in err
    assert "`noharm run` is now `noharm personalize`" in err


def test_relative_data_path_then_audit_from_elsewhere(tmp_path, monkeypatch):
    c = make_synthetic(n_samples=300)
    df = c.X.assign(outcome=c.y.to_numpy(), sexcol=c.groups["sex"].to_numpy())
    (tmp_path / "work").mkdir()
    df.to_csv(tmp_path / "work" / "data.csv", index=False)
    monkeypatch.chdir(tmp_path / "work")
    args = ["personalize", "--data", "data.csv", "--target", "outcome", "--group", "sexcol",
            "--models", "generic,decoupled", "--seeds", "1", "--folds", "3", "--max-epochs",
            "3", "--hidden-layers", "2", "--hidden-units", "8", "--quiet", "--output", "run"]
    assert runner.invoke(app, args).exit_code == 0
    monkeypatch.chdir(tmp_path)                                  # another directory
    res = runner.invoke(app, ["audit", "--from", "work/run", "--personalized", "decoupled",
                              "--no-explain", "--n-boot", "20"])
    assert res.exit_code == 0, res.output
    args[2] = str(tmp_path / "work" / "data.csv")
    parts = runner.invoke(app, [*args[:-2], "--output", str(tmp_path / "parts"),
                                "--ensemble-size", "1"])
    assert parts.exit_code == 0, parts.output
    msg = _err(runner.invoke(app, ["audit", "--from", str(tmp_path / "parts"),
                                   "--personalized", "decoupled", "--no-explain"]))
    assert "rerun with --ensemble-size 3 (seeds x folds) or more" in msg
