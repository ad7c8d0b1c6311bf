"""The results store: a SQLite database that makes long protocols resumable.

Every finished task of a study (one model spec on some runs of one outer split,
trained as one batched ensemble) is written in one transaction as soon as it ends:
its named output arrays (e.g. the probabilities of each run on every row), a JSON
dict of facts (epochs, thresholds, notes), the seconds it took and its note.  A killed process therefore leaves whole
tasks or nothing.  Re-opening the store with the same config resumes (finished
tasks are skipped); with another config it is refused unless the caller starts
a new store, and then the old file is kept beside it under a new name.
"""
from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import NoharmError

STORE_FORMAT = 3
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
    """Finished study tasks in ``DIR/results.db``.

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
                "info TEXT NOT NULL, arrays BLOB NOT NULL, sha256 TEXT NOT NULL, "
                "finished_at REAL NOT NULL, "
                "PRIMARY KEY (model, outer_split, chunk))")
            meta = {"format": "noharm-results", "format_version": str(STORE_FORMAT),
                    "identity": json.dumps(self.identity, sort_keys=True)}
            for k, v in meta.items():
                self._conn.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (k, v))

    # -- writing and reading -------------------------------------------------------------
    def finished(self) -> set[tuple[str, int, int]]:
        """(model, outer split, chunk) of every finished task."""
        return {(m, o, c) for m, o, c in
                self._conn.execute("SELECT model, outer_split, chunk FROM tasks")}

    def write_task(self, model: str, outer: int, chunk: int, output: "TaskOutput") -> None:
        """Record one finished task in one transaction (all or nothing)."""
        buf = io.BytesIO()
        np.savez(buf, **{k: np.ascontiguousarray(v) for k, v in output.arrays.items()})
        try:
            with self._conn:
                self._conn.execute("BEGIN IMMEDIATE")
                info = json.dumps(output.info, sort_keys=True)
                blob = buf.getvalue()
                self._conn.execute("INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                   (model, outer, chunk, float(output.seconds), output.note,
                                    info, blob, _checksum(info, blob), time.time()))
        except sqlite3.OperationalError as exc:    # disk full, read-only, I/O error
            raise StoreError(f"cannot record a finished task in {self.path} ({exc}); free "
                             "space (or fix permissions) and rerun the same command: the "
                             "tasks already stored are kept and resumed.") from None

    def read_task(self, model: str, outer: int, chunk: int) -> "TaskOutput":
        row = self._conn.execute(
            "SELECT seconds, note, info, arrays, sha256 FROM tasks WHERE model = ? AND "
            "outer_split = ? AND chunk = ?", (model, outer, chunk)).fetchone()
        if row is None:
            raise StoreError(f"{self.path} has no task ({model}, split {outer}, part {chunk}).")
        if _checksum(row[2], row[3]) != row[4]:
            raise StoreError(f"{self.path} is corrupt: the stored results of {model}, split "
                             f"{outer}, part {chunk} fail their checksum. Pass --force-new to "
                             "start a new store (the old file is kept).")
        with np.load(io.BytesIO(row[3]), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        return TaskOutput(arrays, json.loads(row[2]), float(row[0]), row[1])

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "ResultsStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _checksum(info: str, blob: bytes) -> str:
    return hashlib.sha256(info.encode() + b"\0" + blob).hexdigest()


@dataclass
class TaskOutput:
    """What one task hands back: named arrays, JSON-able facts, seconds and a note."""

    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    seconds: float = 0.0
    note: str | None = None


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k, "<absent>"), new.get(k, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k} was {a!r}, now {b!r}")
    return out
