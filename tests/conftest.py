"""Test configuration: data from ../shared/data, an empty user cache, small models."""
from __future__ import annotations

import os
from pathlib import Path

import shutil

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (ROOT / ".." / "shared" / "data").resolve()
os.environ.setdefault("NOHARM_DATA_DIR", str(SHARED_DATA))

# Small, fast networks for tests that only check behaviour, not accuracy.
SMALL = dict(hidden_layers=2, hidden_units=16, max_epochs=15, patience=5, batch_size=32)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("NOHARM_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return Path(os.environ["NOHARM_DATA_DIR"])


@pytest.fixture
def toy():
    """Two groups; group ``a`` has the label relationship flipped."""
    rng = np.random.default_rng(0)
    n = 240
    X = rng.normal(size=(n, 6)).astype(np.float32)
    g = np.where(X[:, 0] > 0.4, "a", "b")
    s = X[:, 1] + X[:, 2]
    y = (np.where(g == "a", -s, s) + 0.2 * rng.normal(size=n) > 0).astype(int)
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(6)]), pd.Series(y), pd.Series(g)


@pytest.fixture
def cli_main(monkeypatch, capsys):
    """Run the console script's ``main`` in-process: ``(exit code, stdout, stderr)``
    (usage errors become one line only through ``main``, as for a user)."""
    from noharm.cli import main

    def call(args):
        monkeypatch.setattr("sys.argv", ["noharm", *map(str, args)])
        code = main()
        out = capsys.readouterr()
        return code, out.out, out.err
    return call


def one_error_line(result) -> str:
    """The single ``error:`` line of a ``cli_main`` result with exit code 2."""
    code, _, err = result
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, err)
    return lines[0]


@pytest.fixture(scope="session")
def site_csv(tmp_path_factory):
    """900 rows in 6 sites with a site shift: binary ``y`` and length of stay ``los``."""
    rng = np.random.default_rng(3)
    n = 900
    df = pd.DataFrame({"site": rng.choice(list("ABCDEF"), n), "age": rng.integers(20, 90, n),
                       "sex": rng.choice(["F", "M"], n), "x1": rng.normal(size=n),
                       "x2": rng.normal(size=n)})
    shift = df["site"].map(dict(zip("ABCDEF", [0, 0.5, -0.5, 1, -1, 0.2])))
    df["los"] = 3 + df["x1"] + shift + 0.01 * df["age"] + rng.normal(0, 0.3, n)
    df["y"] = (df["x1"] + df["x2"] + shift + rng.normal(0, 0.5, n) > 0).astype(int)
    path = tmp_path_factory.mktemp("sites") / "sites.csv"
    df.to_csv(path, index=False)
    return path


def store_tasks(db) -> int:
    """Finished tasks in a results store (0 while it does not exist yet)."""
    import sqlite3
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM tasks").fetchone()[0]
    except sqlite3.Error:
        return 0


def runner_error(result) -> str:
    """The single ``error:`` line of a CliRunner result with exit code 2."""
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.stderr.strip().splitlines() if ln]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def kill_after_tasks(args, db, k: int) -> int:
    """Start ``noharm ARGS`` in a subprocess, SIGKILL it once ``db`` holds ``k`` finished
    tasks, and return how many it holds then."""
    import signal
    import subprocess
    import sys
    import time
    proc = subprocess.Popen([sys.executable, "-m", "noharm.cli", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while store_tasks(db) < k and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return store_tasks(db)


# Debian's headless Chromium for the HTML-report tests (CI installs it and sets
# NOHARM_REQUIRE_BROWSER, which turns its absence into a failure instead of a skip).
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_browser = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("NOHARM_REQUIRE_BROWSER"),
    reason="Debian's chromium is not installed (CI installs it)")


@pytest.fixture
def sync_api():
    """playwright.sync_api: a missing driver fails under CI, skips elsewhere."""
    if os.environ.get("NOHARM_REQUIRE_BROWSER"):
        from playwright import sync_api as api
        return api
    return pytest.importorskip("playwright.sync_api")
