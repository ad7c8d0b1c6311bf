"""The results store: a SQLite database that makes long protocols resumable.

Every finished task (one model on some runs of one outer split, trained as one
batched ensemble) is written in one transaction as soon as it ends: the
probabilities of each of its runs (model x outer split x seed x fold) on every
row, the seconds it took and its note.  A killed process therefore leaves whole
tasks or nothing.  Re-opening the store with the same config resumes (finished
tasks are skipped); with another config it is refused unless the caller starts
a new store, and then the old file is kept beside it under a new name.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..errors import ConfigError, NoharmError

STORE_FORMAT = 1
STORE_NAME = "results.db"


class StoreError(NoharmError):
    """The results database is corrupt, foreign, or made with another config."""


def fingerprint(*arrays: np.ndarray) -> str:
    """sha256 of the arrays' bytes, shapes and dtypes (identifies the data of a run)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        if a.dtype == object:
            a = a.astype(str)
        h.update(f"{a.shape}{a.dtype.str}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _moved_name(path: Path, tag: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.{tag}-{stamp}")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.{tag}-{stamp}-{n}")
        n += 1
    return target


class ResultsStore:
    """Finished protocol tasks in ``DIR/results.db``.

    Parameters
    ----------
    path
        The database file.
    identity
        The config that defines the results (JSON-able).  A store made with
        another identity is refused.
    force_new
        Start a new store whatever ``path`` holds (another identity, a corrupt file, or
        finished runs of this one); the old file is renamed to
        ``results.db.old-<time>`` (kept, never deleted).

    Raises
    ------
    StoreError
        ``path`` is corrupt or not a noharm store, or holds another config.
    """

    def __init__(self, path: str | Path, identity: dict, *, force_new: bool = False) -> None:
        self.path = Path(path)
        self.identity = json.loads(json.dumps(identity, sort_keys=True, default=str))
        self.moved_to: Path | None = None
        if self.path.exists():
            if force_new:
                self.moved_to = _moved_name(self.path, "old")
                self.path.rename(self.moved_to)
            else:
                problem = self._problem()
                if problem is not None:
                    raise StoreError(problem + " Pass --force-new to start a new one (the old "
                                     "file is kept as results.db.old-<time>).")
        self._conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self._conn.execute("PRAGMA synchronous=FULL")
        self._create()

    # -- opening -------------------------------------------------------------------------
    def _problem(self) -> str | None:
        """Why the existing file cannot be resumed, or None."""
        try:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            try:
                ok = conn.execute("PRAGMA quick_check").fetchone()[0]
                if ok != "ok":
                    return f"the results database {self.path} is corrupt ({ok})."
                meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            return (f"the results database {self.path} is corrupt or not a noharm results "
                    f"database ({exc}).")
        if meta.get("format") != "noharm-results" or meta.get("format_version") != str(
                STORE_FORMAT):
            return f"{self.path} is not a noharm results database (format {meta.get('format')})."
        old = json.loads(meta.get("identity", "{}"))
        if old != self.identity:
            diff = _differences(old, self.identity)
            return (f"{self.path.parent} holds results of a different config ("
                    + "; ".join(diff[:5]) + ("; ..." if len(diff) > 5 else "")
                    + "): resume with the same options or choose another --output.")
        return None

    def _create(self) -> None:
        with self._conn:
            self._conn.execute("BEGIN")
            self._conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, "
                               "value TEXT NOT NULL)")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS tasks (model TEXT NOT NULL, outer_split INTEGER "
                "NOT NULL, chunk INTEGER NOT NULL, seconds REAL NOT NULL, note TEXT, "
                "finished_at REAL NOT NULL, PRIMARY KEY (model, outer_split, chunk))")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS runs (model TEXT NOT NULL, outer_split INTEGER NOT "
                "NULL, seed INTEGER NOT NULL, fold INTEGER NOT NULL, chunk INTEGER NOT NULL, "
                "n INTEGER NOT NULL, proba BLOB NOT NULL, "
                "PRIMARY KEY (model, outer_split, seed, fold))")
            meta = {"format": "noharm-results", "format_version": str(STORE_FORMAT),
                    "identity": json.dumps(self.identity, sort_keys=True)}
            for k, v in meta.items():
                self._conn.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (k, v))

    # -- writing and reading -------------------------------------------------------------
    def finished(self) -> set[tuple[str, int, int]]:
        """(model, outer split, chunk) of every finished task."""
        return {(m, o, c) for m, o, c in
                self._conn.execute("SELECT model, outer_split, chunk FROM tasks")}

    def write_task(self, model: str, outer: int, chunk: int, runs: Iterable[dict],
                   proba: np.ndarray | None, seconds: float, note: str | None) -> None:
        """Record one finished task and its runs in one transaction (all or nothing)."""
        runs = list(runs)
        if proba is not None and len(proba) != len(runs):
            raise ConfigError(f"task has {len(runs)} runs but {len(proba)} probability rows.")
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute("INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?)",
                               (model, outer, chunk, float(seconds), note, time.time()))
            if proba is not None:
                p = np.ascontiguousarray(proba, dtype=np.float64)
                self._conn.executemany(
                    "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(model, outer, int(r["seed"]), int(r["fold"]), chunk, p.shape[1],
                      p[i].tobytes()) for i, r in enumerate(runs)])

    def tasks(self) -> list[tuple[str, int, int, float, str | None]]:
        return list(self._conn.execute(
            "SELECT model, outer_split, chunk, seconds, note FROM tasks "
            "ORDER BY outer_split, model, chunk"))

    def proba(self, model: str, outer: int, runs: list[dict]) -> np.ndarray | None:
        """Probabilities ``(n_runs, n)`` of ``model`` in outer split ``outer``, in the order
        of ``runs``; None when some run has none (e.g. a skipped decoupled model)."""
        rows = {(s, f): b for s, f, b in self._conn.execute(
            "SELECT seed, fold, proba FROM runs WHERE model = ? AND outer_split = ?",
            (model, outer))}
        keys = [(int(r["seed"]), int(r["fold"])) for r in runs]
        if not all(k in rows for k in keys):
            return None
        return np.vstack([np.frombuffer(rows[k], dtype=np.float64) for k in keys])

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "ResultsStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k, "<absent>"), new.get(k, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k} was {a!r}, now {b!r}")
    return out
