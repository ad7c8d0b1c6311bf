"""Experiment engine: results store and resume, backends, YAML configs, HTML report."""

import pandas as pd
import pytest

import noharm
from typer.testing import CliRunner

from conftest import CHROMIUM, needs_browser, kill_after_tasks, store_tasks, runner_error as _err
from noharm.cli import app
from noharm.datasets import make_synthetic
from noharm.errors import ConfigError
from noharm.experiments import (PersonalizationStudy, RunOptions, build_plan, run_study,
                                study_identity)
from noharm.experiments.config_file import OptionSpec, read_config
from noharm.experiments.store import ResultsStore, StoreError

runner = CliRunner()
SMALL = ["personalize", "--n-samples", "300", "--models", "generic,conditional-bias", "--seeds", "3",
         "--folds", "3", "--ensemble-size", "1", "--max-epochs", "12", "--patience", "4",
         "--hidden-layers", "2", "--hidden-units", "16", "--attr-layers", "2"]
FAST = dict(hidden_layers=2, hidden_units=8, attr_layers=2, max_epochs=8, patience=3)


def test_sigkill_then_resume_equals_uninterrupted_run(tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    res = runner.invoke(app, [*SMALL, "--output", str(full), "--quiet"])
    assert res.exit_code == 0, res.output
    total = store_tasks(full / "results.db")
    assert total == 18                     # 2 models x 9 runs, one run per task

    done = kill_after_tasks([*SMALL, "--output", str(killed), "--quiet"],
                            killed / "results.db", 3)
    assert 3 <= done < total, f"the run was not killed part-way ({done} of {total} tasks)"

    resumed = runner.invoke(app, [*SMALL, "--output", str(killed)])
    assert resumed.exit_code == 0, resumed.output
    assert f"resuming: {done} of {total} tasks" in resumed.stderr
    assert store_tasks(killed / "results.db") == total
    for name in ("results.csv", "summary.csv", "summary.md", "splits.json"):
        assert (full / name).read_bytes() == (killed / name).read_bytes(), name


def test_store_refuses_other_config_unless_force_new(tmp_path):
    out = tmp_path / "o"
    args = ["personalize", "--n-samples", "200", "--models", "generic", "--seeds", "1",
            "--folds", "3", "--max-epochs", "4", "--patience", "2", "--hidden-layers", "2", "--hidden-units",
            "8", "--output", str(out), "--quiet"]
    assert runner.invoke(app, args).exit_code == 0
    msg = _err(runner.invoke(app, args + ["--max-epochs", "5"]))
    assert "different config" in msg and "max_epochs was 4, now 5" in msg
    assert "--force-new" in msg
    ok = runner.invoke(app, args + ["--max-epochs", "5", "--force-new"])
    assert ok.exit_code == 0, ok.output
    kept = list(out.glob("results.db.old-*"))
    assert len(kept) == 1 and store_tasks(kept[0]) == 1
    again = runner.invoke(app, args + ["--max-epochs", "5", "--force-new"])   # same config
    assert again.exit_code == 0 and "resuming" not in again.stderr
    assert len(list(out.glob("results.db.old-*"))) == 2


def test_corrupt_store_is_reported_and_never_overwritten(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    junk = b"this is not a database" * 100
    (out / "results.db").write_bytes(junk)
    args = ["personalize", "--n-samples", "200", "--models", "generic", "--seeds", "1",
            "--folds", "3", "--max-epochs", "3", "--output", str(out), "--quiet"]
    msg = _err(runner.invoke(app, args))
    assert "corrupt" in msg and "results.db" in msg and "--force-new" in msg
    assert (out / "results.db").read_bytes() == junk
    assert runner.invoke(app, args + ["--force-new"]).exit_code == 0
    (kept,) = out.glob("results.db.old-*")
    assert kept.read_bytes() == junk


def test_store_python_api_identity(tmp_path):
    c = make_synthetic(n_samples=200)
    study = PersonalizationStudy(models=("generic",), n_seeds=1, n_folds=3, **FAST)
    ident = study_identity(study, c, build_plan(study, c))
    with ResultsStore(tmp_path / "r.db", ident) as store:
        first = run_study(study, c, store=store).results
        assert len(store.finished()) == 1
    other = make_synthetic(n_samples=200, random_state=5)
    with pytest.raises(StoreError, match="data_sha256"):
        ResultsStore(tmp_path / "r.db", study_identity(study, other, build_plan(study, other)))
    with ResultsStore(tmp_path / "r.db", ident) as store:
        again = run_study(study, c, RunOptions(n_jobs=2), store=store).results  # from the store
    pd.testing.assert_frame_equal(first, again)


def test_dask_local_cluster_equals_sequential():
    distributed = pytest.importorskip("distributed")
    c = make_synthetic(n_samples=200)
    study = PersonalizationStudy(models=("generic", "conditional-bias", "logreg"), n_seeds=1,
                                 n_folds=3, ensemble_size=1, **FAST)
    seq = run_study(study, c).results
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        dask = run_study(study, c, RunOptions(backend="dask",
                                              scheduler=cluster.scheduler_address)).results
    pd.testing.assert_frame_equal(seq, dask)


def test_dask_bad_inputs(monkeypatch):
    from noharm.experiments import backends
    monkeypatch.setattr(backends, "CONNECT_TIMEOUT", "1s")
    c = make_synthetic(n_samples=200)
    with pytest.raises(ConfigError, match="needs a scheduler address"):
        RunOptions(backend="dask").validate()
    study = PersonalizationStudy(models=("generic",), n_seeds=1, n_folds=3, **FAST)
    with pytest.raises(ConfigError, match="cannot reach the Dask scheduler"):
        run_study(study, c, RunOptions(backend="dask", scheduler="tcp://127.0.0.1:1"))
    assert "unknown backend 'spark'" in _err(runner.invoke(app, ["personalize", "--backend",
                                                                 "spark"]))


# -- YAML configs ------------------------------------------------------------------------


def test_yaml_config_and_print_config(tmp_path):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text("dataset: heart\nmodels: [generic, conditional-bias]\nseeds: 2\n"
                   "max-epochs: 7\ngroup: []\nguard: false\n")
    res = runner.invoke(app, ["personalize", "--config", str(cfg), "--seeds", "3",
                              "--print-config"])
    assert res.exit_code == 0, res.output
    shown = res.stdout
    assert "dataset: heart" in shown and "models: generic,conditional-bias" in shown
    assert "seeds: 3" in shown            # the command line wins over the file
    assert "max-epochs: 7" in shown and "guard: false" in shown
    assert "folds: 5" in shown            # untouched defaults are shown too


@pytest.mark.parametrize("text, needle", [
    ("seeds: 2\nepochs: 3\n", "unknown key 'epochs'"),
    ("seeds: five\n", "seeds must be an integer, got 'five'"),
    ("lr: [1, 2]\n", "lr must be a number"),
    ("guard: 1\n", "guard must be true or false"),
    ("- seeds\n", "must be a mapping"),
    ("seeds: [\n", "not valid YAML"),
])
def test_yaml_config_bad_files(tmp_path, text, needle):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(text)
    assert needle in _err(runner.invoke(app, ["personalize", "--config", str(cfg)]))


def test_yaml_missing_file_and_suggestion(tmp_path):
    assert "does not exist" in _err(runner.invoke(app, ["personalize", "--config",
                                                        str(tmp_path / "no.yaml")]))
    (tmp_path / "a.yaml").write_text("max_epoch: 3\n")
    with pytest.raises(ConfigError, match="did you mean 'max-epochs'"):
        read_config(tmp_path / "a.yaml", {"max_epochs": OptionSpec("max_epochs", "int")})


def test_unwritable_output(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    msg = _err(runner.invoke(app, ["personalize", "--output", str(blocker / "sub")]))
    assert "cannot create output directory" in msg


# -- HTML report -------------------------------------------------------------------------



NET = ["--max-epochs", "6", "--patience", "3", "--hidden-layers", "2", "--hidden-units", "8"]


@pytest.fixture(scope="module")
def full_dir(tmp_path_factory):
    """A personalization study with an audit of its models beside it."""
    out = tmp_path_factory.mktemp("report")
    for args in (["personalize", "--seeds", "1", "--folds", "3", "--attr-layers", "2",
                  "--models", "generic,decoupled,conditional-bias", *NET],
                 ["audit", "--seeds", "1", "--folds", "3", "--no-explain", "--n-boot", "50",
                  "--overwrite"]):
        res = runner.invoke(app, [*args, "--n-samples", "300", "--quiet", "--output",
                                  str(out)])
        assert res.exit_code == 0, res.output
    return out


def test_report_writes_self_contained_html(full_dir, tmp_path):
    res = runner.invoke(app, ["report", str(full_dir)])
    assert res.exit_code == 0, res.output
    text = (full_dir / "report.html").read_text()
    assert text.count("<img") == 4 and text.count("data:image/png;base64,") == 4
    assert 'alt="reliability diagram"' in text
    # the diagram's points: every model, every subgroup, counts adding up to the test
    # predictions of all runs (each test row once per run and model)
    cal = pd.read_csv(full_dir / "calibration.csv")
    assert set(cal["model"]) >= {"generic", "decoupled", "conditional-bias"}
    tot = cal[cal.subgroup == "all"].groupby("model")["n"].sum()
    per = cal[cal.subgroup != "all"].groupby("model")["n"].sum()
    assert (tot == per).all() and tot.nunique() == 1
    assert cal["mean_predicted"].between(0, 1).all() and cal["observed_rate"].between(0, 1).all()
    assert "http://" not in text and "https://" not in text and "<script" not in text
    for heading in ("Personalization study", "Audit: benefit of personalization",
                    "Guard: deployed model per subgroup"):
        assert heading in text
    assert "cannot tell" in text or "helps" in text or "harms" in text
    deb = tmp_path / "deb"
    res = runner.invoke(app, ["debias", "--outer-splits", "1", "--methods",
                              "random_perturbation,reject_option", *NET, "--n-samples", "300",
                              "--quiet", "--output", str(deb)])
    assert res.exit_code == 0, res.output
    assert runner.invoke(app, ["report", str(deb)]).exit_code == 0
    text = (deb / "report.html").read_text()
    assert "Debiasing" in text and "reject_option" in text and text.count("<img") == 1


def test_report_bad_inputs(tmp_path):
    assert "not a directory" in _err(runner.invoke(app, ["report", str(tmp_path / "no")]))
    assert "holds no noharm results" in _err(runner.invoke(app, ["report", str(tmp_path)]))
    (tmp_path / "summary.csv").write_text("")                  # 0 bytes: was EmptyDataError
    assert "summary.csv is empty or not a CSV" in _err(runner.invoke(app, ["report",
                                                                           str(tmp_path)]))


@pytest.fixture(scope="module")
def debias_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("deb")
    res = runner.invoke(app, ["debias", "--outer-splits", "1", "--methods",
                              "random_perturbation,reject_option", *NET, "--n-samples", "300",
                              "--quiet", "--output", str(out)])
    assert res.exit_code == 0, res.output
    return out


def test_report_names_command_version_date_and_audited_model(full_dir):
    assert runner.invoke(app, ["report", str(full_dir)]).exit_code == 0
    text = (full_dir / "report.html").read_text()
    assert "<h2>Run</h2>" in text and f"<td>{noharm.__version__}</td>" in text
    import re
    cmd = re.search(r"<th>command</th><td>(noharm personalize [^<]*)</td>", text).group(1)
    assert "--seeds 1" in cmd and "--models generic,decoupled,conditional-bias" in cmd
    audit = re.search(r"<th>audit command</th><td>(noharm audit [^<]*)</td>", text).group(1)
    assert "--no-explain" in audit and "--n-boot 50" in audit
    assert "conditional-bias (hp) against generic (h0) on synthetic" in text
    assert text.count("<th>date</th><td>20") == 1


@needs_browser
def test_report_opens_in_headless_chromium(full_dir, sync_api):
    path = full_dir / "browser.html"
    assert runner.invoke(app, ["report", str(full_dir), "--out", str(path)]).exit_code == 0
    messages = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page()
            page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: messages.append(f"pageerror: {e}"))
            page.goto(path.as_uri())
            images = page.eval_on_selector_all(
                "img", "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])")
            n_tables = page.locator("table").count()
            body = page.inner_text("body")
        finally:
            browser.close()
    assert messages == []
    assert len(images) == 4 and all(ok and w > 200 and h > 100 for ok, w, h in images)
    assert n_tables >= 3
    assert "old_female" in body
    assert "cannot tell" in body or "helps" in body or "harms" in body
    assert "noharm personalize --models" in body and noharm.__version__ in body
    assert "conditional-bias (hp) against generic (h0)" in body


@needs_browser
def test_debias_report_table_is_filled_in_headless_chromium(debias_dir, sync_api):
    """Every debias table row has as many filled cells as the header has columns (the
    |spd| header once split one table into 9 headers over 7 cells)."""
    path = debias_dir / "browser.html"
    assert runner.invoke(app, ["report", str(debias_dir), "--out", str(path)]).exit_code == 0
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox",
                                                                    "--disable-gpu"])
        try:
            page = browser.new_page()
            page.goto(path.as_uri())
            tables = page.eval_on_selector_all("table:not(.run)", """els => els.map(t => [
                t.querySelectorAll('thead th, tr:first-child th').length,
                Array.from(t.querySelectorAll('tbody tr')).map(r => Array.from(
                    r.querySelectorAll('td')).map(c => c.innerText.trim()))])""")
            body = page.inner_text("body")
        finally:
            browser.close()
    assert tables and "reject_option" in body and "noharm debias" in body
    for n_head, rows in tables:
        assert rows and all(len(r) == n_head and all(c for c in r) for r in rows), \
            (n_head, rows)


def test_a_changed_result_in_the_store_is_refused(tmp_path):
    """A changed byte inside a stored blob passes SQLite's integrity check; the per-task
    checksum catches it on resume, and --force-new keeps the old file."""
    import sqlite3
    out = tmp_path / "o"
    args = ["personalize", "--n-samples", "200", "--models", "generic", "--seeds", "1",
            "--folds", "3", "--max-epochs", "3", "--hidden-layers", "2", "--hidden-units", "8",
            "--output", str(out), "--quiet"]
    assert runner.invoke(app, args).exit_code == 0
    with sqlite3.connect(out / "results.db") as conn:
        blob = bytearray(conn.execute("SELECT arrays FROM tasks").fetchone()[0])
        blob[-30] ^= 0xFF
        conn.execute("UPDATE tasks SET arrays = ?", (bytes(blob),))
    msg = _err(runner.invoke(app, args))
    assert "fail their checksum" in msg and "--force-new" in msg
    assert runner.invoke(app, [*args, "--force-new"]).exit_code == 0
    assert list(out.glob("results.db.old-*"))


def test_each_model_has_one_colour_in_every_plot(monkeypatch, full_dir):
    """The accuracy bars and the gain forest plot draw a model in the same colour (they
    differed: the reference is in one plot and not the other, shifting the cycle)."""
    import matplotlib.colors as mcolors
    import pandas as pd
    from noharm.report import html as report_html
    figs = []
    monkeypatch.setattr(report_html, "_png", lambda fig: figs.append(fig) or "")
    summary = pd.read_csv(full_dir / "summary.csv")
    report_html.accuracy_figure(summary)
    report_html.gain_figure(summary)
    colours = []
    for fig in figs:
        handles, labels = fig.axes[0].get_legend_handles_labels()
        colours.append({lab: mcolors.to_hex(
            h.patches[0].get_facecolor() if hasattr(h, "patches") else h[0].get_color())
            for h, lab in zip(handles, labels)})
    common = set(colours[0]) & set(colours[1])
    assert len(common) >= 2
    assert all(colours[0][m] == colours[1][m] for m in common), colours


def test_a_study_does_not_import_the_others():
    """`noharm personalize` pays only for its own study's imports (the debiasing study pulls
    in scikit-learn's clustering and fairlearn): studies are imported on first use."""
    import subprocess
    import sys
    code = ("import sys; from noharm.experiments import PersonalizationStudy, run_study; "
            "print(sorted(m for m in ('noharm.debias', 'noharm.experiments.studies.debias', "
            "'noharm.experiments.studies.mixed') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_gain_summary_pairs_each_run_with_the_references_same_run():
    """Gains are paired per (subgroup, metric, outer split, seed, fold), whatever the row
    order; a run the reference lacks (or a NaN value) is left out of the pairing; with
    several outer splits the interval is over the splits' mean gains."""
    import numpy as np
    from noharm.experiments import gain_summary
    rng = np.random.default_rng(0)
    rows = []
    for outer in range(3):
        for seed in range(4):
            base = rng.normal()
            for model, shift in (("reference", 0.0), ("m", 0.1 * (outer + 1))):
                rows.append({"model": model, "outer_split": outer, "seed": seed, "fold": 0,
                             "role": "test", "subgroup": "g", "metric": "accuracy",
                             "value": base + shift, "n": 10})
    rows.append({"model": "m", "outer_split": 0, "seed": 9, "fold": 0, "role": "test",
                 "subgroup": "g", "metric": "accuracy", "value": 100.0, "n": 10})
    res = pd.DataFrame(rows).sample(frac=1.0, random_state=1).reset_index(drop=True)
    s = gain_summary(res, reference="reference", test_train_ratio=0.25).set_index("model")
    assert s.loc["m", "gain"] == pytest.approx(0.2)            # mean of 0.1, 0.2, 0.3
    assert s.loc["reference", "verdict"] == "reference"
    assert s.loc["m", "gain_ci_low"] < 0.2 < s.loc["m", "gain_ci_high"]
    assert s.loc["m", "n_test"] == 10
