"""Bad inputs of the 196-case trial (issue 19) not covered elsewhere: one clear line or
error each, nothing silently wrong."""
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from noharm.cli import app
from noharm.datasets import load_tabular
from noharm.errors import ConfigError
from noharm.models import GenericClassifier

from conftest import runner_error as _err

runner = CliRunner()


@pytest.mark.parametrize("args, needle", [
    (["--seeds", "0"], "error: --seeds must be an integer >= 1, got 0."),
    (["--ensemble-size", "0"], "error: --ensemble-size must be an integer >= 1, got 0."),
    (["--guard-alpha", "0.9"], "error: --guard-alpha must be a number in (0.0, 0.5)"),
    (["--bias-layers", "9"], "error: --bias-layers must be between 1 and "
                             "min(--hidden-layers, --attr-layers) = 5."),
])
def test_messages_name_the_options_a_user_types(args, needle):
    assert _err(runner.invoke(app, ["personalize", *args])).startswith(needle)


def test_messages_show_plain_values_not_numpy_reprs():
    from noharm._validation import check_positive_int
    with pytest.raises(ConfigError, match=r"got 0\.$"):
        check_positive_int(np.int64(0), name="k")
    df = pd.DataFrame({"x": np.arange(30) / 7, "g": [1, 2, 3] * 10, "y": [0, 1] * 15})
    from noharm.groups import Attribute, GroupSpec
    with pytest.raises(ConfigError, match=r"values \[3\] without a label"):
        GroupSpec((Attribute("g", labels={1: "a", 2: "b"}),)).transform(df)


def test_duplicate_numeric_columns_are_named_as_duplicates():
    X = pd.DataFrame(np.ones((10, 3)), columns=["a", "b", "a"])
    with pytest.raises(ConfigError, match=r"repeats the column\(s\) \['a'\]"):
        GenericClassifier().fit(X, [0, 1] * 5)


def test_a_subgroup_without_test_rows_is_named_in_a_note():
    from noharm.experiments import PersonalizationStudy, run_study
    rng = np.random.default_rng(0)
    n = 200
    df = pd.DataFrame({"x": rng.normal(size=n), "g": ["a"] * 98 + ["b"] * 100 + ["c"] * 2,
                       "y": np.r_[rng.integers(0, 2, n - 2), [0, 1]]})
    res = run_study(PersonalizationStudy(models=("generic", "logreg"), n_seeds=1, n_folds=1,
                                         guard=False, max_epochs=2),
                    load_tabular(df, target="y", groups=["g"]))
    assert "c" not in set(res.results.loc[res.results.role == "test", "subgroup"])
    assert any("subgroup(s) c have no test rows" in n for n in res.notes)
    assert any(line.startswith("all ") for line in res.text.splitlines())  # one run: renders
    assert "generic" in res.text


def test_data_list_says_where_each_dataset_resolves(data_dir, monkeypatch, tmp_path):
    res = runner.invoke(app, ["data", "list"])
    assert res.exit_code == 0, res.output
    assert f"-> {data_dir / 'uci_heart' / 'processed.cleveland.data'} (NOHARM_DATA_DIR)" \
        in res.stdout
    monkeypatch.setenv("NOHARM_DATA_DIR", str(tmp_path))
    res = runner.invoke(app, ["data", "list"])
    assert "heart" in res.stdout and "(shipped with noharm)" in res.stdout
    assert "mimic3/cohort.parquet under NOHARM_DATA_DIR" in res.stdout


def test_junk_run_config_is_one_line(tmp_path):
    out = tmp_path / "run"
    res = runner.invoke(app, ["personalize", "--n-samples", "200", "--models", "generic,logreg",
                              "--seeds", "1", "--folds", "3", "--max-epochs", "2",
                              "--no-guard", "--output", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    (out / "config.json").write_text("junk{")
    msg = _err(runner.invoke(app, ["audit", "--from", str(out), "--no-explain"]))
    assert "config.json is not the file noharm wrote" in msg


def test_ctrl_c_to_the_process_group_is_one_line(tmp_path):
    """SIGINT to the whole process group (Ctrl-C in a terminal): no worker tracebacks
    ('Process ForkPoolWorker-2:'), one line, exit 130, and the run resumes."""
    import os
    import signal
    import subprocess
    import sys
    import time
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "noharm.cli", "personalize", "--n-samples", "600",
           "--jobs", "2", "--output", str(out)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while not (out / "results.db").exists() and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)                                    # inside the first tasks
    os.killpg(p.pid, signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "Traceback" not in err and "ForkPoolWorker" not in err, err
    assert err.strip().splitlines()[-1].startswith("interrupted: finished tasks are kept in")


def test_a_full_disk_while_storing_a_task_is_one_error(tmp_path, monkeypatch):
    import errno
    import sqlite3
    from noharm.experiments.rundir import write_text
    from noharm.experiments.store import ResultsStore, StoreError, TaskOutput

    class FullDisk:
        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def execute(self, *a, **k):
            raise sqlite3.OperationalError("database or disk is full")

    store = ResultsStore(tmp_path / "results.db", {"study": "x"})
    real = store._conn
    store._conn = FullDisk()
    with pytest.raises(StoreError, match="disk is full.*free space.*resumed"):
        store.write_task("generic", 0, 0, TaskOutput({"p": np.zeros(3)}))
    store._conn = real
    store.close()

    def no_space(self, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr("pathlib.Path.write_text", no_space)
    (tmp_path / "results.csv").write_bytes(b"old")
    with pytest.raises(ConfigError, match="No space left on device.*free space"):
        write_text(tmp_path / "results.csv", "new")
    assert (tmp_path / "results.csv").read_bytes() == b"old"        # the old file is whole


def test_a_finite_value_beyond_float32_is_not_called_missing():
    from noharm.errors import MissingValuesError
    X = pd.DataFrame({"a": [1.0, 1e300, 2.0, 3.0] * 5, "b": np.arange(20.0)})
    with pytest.raises(MissingValuesError, match=r"infinite values \(or values beyond "
                                                 r"float32\) in columns \['a'\]"):
        GenericClassifier().fit(X, [0, 1] * 10)
