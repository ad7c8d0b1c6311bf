"""Run directories (DESIGN §8): a directory holds only what noharm wrote for one study.

* A directory holding files noharm did not write is refused, naming them (nothing of
  the user's is ever touched); so is one holding another study's results, unless
  ``force_new``, which moves every noharm file aside (``NAME.old-<time>``, never
  deleted), ``models/`` and files derived from them (report, audit) included.
* A lock file refuses a second concurrent run into the same directory; the lock of a
  process that no longer runs is taken over.
* ``config.json`` records the study, its identity (options, plan and data sha256), the
  package version, the command line and the date, and is written when the run starts,
  so an interrupted directory still says what it holds.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import socket
import sys
import time
from pathlib import Path

from .. import __version__
from ..errors import ConfigError, NoharmError

OUTPUTS = ("results.db", "results.csv", "summary.csv", "summary_external.csv", "summary.md",
           "config.json", "calibration.csv",
           "splits.json", "models")
# written later into a run directory by `noharm report` and `noharm audit --output DIR`
DERIVED = ("report.html", "audit.csv", "audit.md", "forest.png", "reliability.json")
LOCK = ".noharm.lock"


class RunDirError(NoharmError):
    """The output directory holds foreign files, another study, or a running study."""


def _stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def _ours(name: str) -> bool:
    base = name.split(".old-")[0]
    return name == LOCK or base in OUTPUTS or base in DERIVED


def read_config(directory: Path) -> dict | None:
    """``config.json`` written by noharm in ``directory``, or None."""
    f = directory / "config.json"
    try:
        d = json.loads(f.read_text())
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) and d.get("written_by") == "noharm" else None


class RunDirectory:
    """Claim ``path`` for a run of ``study`` (check it, lock it, move old files aside).

    Use as a context manager; the lock is released on exit.
    """

    def __init__(self, path: str | Path, study: str, *, force_new: bool = False) -> None:
        self.path = Path(path)
        self.study = study
        self.force_new = force_new
        self.moved: list[Path] = []
        self._locked = False

    # -- claiming ------------------------------------------------------------------------
    def __enter__(self) -> "RunDirectory":
        if self.path.exists() and not self.path.is_dir():
            raise RunDirError(f"output {self.path} is a file; give a directory.")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunDirError(f"cannot create output directory {self.path} ({exc.strerror}); "
                              "choose a writable directory.") from None
        self._check_contents()
        self._lock()
        try:
            if self.force_new:
                self._move_aside()
        except BaseException:
            self._unlock()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._unlock()

    def _check_contents(self) -> None:
        names = sorted(p.name for p in self.path.iterdir())
        foreign = [n for n in names if not _ours(n)]
        if foreign:
            raise RunDirError(f"{self.path} holds files noharm did not write ("
                              + ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
                              + "); choose another output directory (nothing was changed).")
        present = [n for n in names if n in OUTPUTS]
        if not present:
            return
        cfg = read_config(self.path)
        if cfg is None:
            if "results.db" in present and "config.json" not in present:
                return        # an interrupted run of an older layout: the store decides
            raise RunDirError(f"{self.path} holds {', '.join(present[:5])} that noharm did not "
                              "write (its config.json does not name a noharm study; an older "
                              "noharm or another program wrote them); choose another output "
                              "directory (nothing was changed).")
        if cfg.get("study") != self.study and not self.force_new:
            raise RunDirError(f"{self.path} holds results of the {cfg.get('study')} study; "
                              "choose another output directory, or pass --force-new to move "
                              "them aside (kept as NAME.old-<time>).")

    def _lock(self) -> None:
        lock = self.path / LOCK
        me = f"{os.getpid()} {socket.gethostname()}"
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = _alive_holder(lock)
                if holder is not None:
                    raise RunDirError(f"another noharm run ({holder}) is writing to {self.path}; "
                                      "wait for it or choose another output directory.") from None
                try:
                    lock.unlink()         # stale: its process is gone
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w") as f:
                f.write(me)
            self._locked = True
            return
        raise RunDirError(f"cannot lock {self.path}; another run keeps taking it.")

    def _unlock(self) -> None:
        if self._locked:
            try:
                (self.path / LOCK).unlink()
            except FileNotFoundError:
                pass
            self._locked = False

    def _move_aside(self) -> None:
        stamp = _stamp()
        for name in OUTPUTS + DERIVED:
            src = self.path / name
            if not src.exists():
                continue
            dst = self.path / f"{name}.old-{stamp}"
            n = 1
            while dst.exists():
                dst = self.path / f"{name}.old-{stamp}-{n}"
                n += 1
            src.rename(dst)
            self.moved.append(dst)

    # -- writing -------------------------------------------------------------------------
    def write_config(self, identity: dict, extra: dict | None = None) -> None:
        """config.json: study, identity (options, plan, data sha256), version, command,
        date, and ``extra`` (timings, notes, data source)."""
        cfg = {"written_by": "noharm", "study": self.study, "noharm_version": __version__,
               "command": command_line(),
               "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
               **identity, **(extra or {})}
        write_text(self.path / "config.json", json.dumps(cfg, indent=2, default=str))


def click_context():
    """The running command's click context (typer's vendored click or click), or None."""
    for mod in ("typer._click.globals", "click.globals"):
        try:
            ctx = __import__(mod, fromlist=["x"]).get_current_context(silent=True)
        except ImportError:
            continue
        if ctx is not None:
            return ctx
    return None


def command_line() -> str:
    """The noharm command being run: rebuilt from the command-line context (the options a
    user gave, as ``--name value``) when there is one, else ``sys.argv``."""
    import shlex
    ctx = click_context()
    if ctx is None:
        return " ".join(["noharm", *sys.argv[1:]])
    words = ctx.command_path.split()
    words[0] = "noharm"
    for p in ctx.command.params:
        source = ctx.get_parameter_source(p.name)
        if source is None or source.name not in ("COMMANDLINE", "ENVIRONMENT") or \
                not getattr(p, "opts", None):
            continue
        value = ctx.params.get(p.name)
        flag = p.opts[0]
        if getattr(p, "is_flag", False):
            on = p.opts[0] if value else (p.secondary_opts or [f"--no-{flag[2:]}"])[0]
            words.append(on)
            continue
        for v in (value if isinstance(value, (list, tuple)) else [value]):
            words += [flag, shlex.quote(str(v))]
    return " ".join(words)


def write_text(path: Path, text: str) -> None:
    """Write through a temporary file and rename: a full disk leaves the old file whole."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise ConfigError(f"cannot write {path} ({exc.strerror}); free space or choose "
                          "another output directory.") from None


def _alive_holder(lock: Path) -> str | None:
    """'pid N' of a live process holding ``lock`` on this host, else None."""
    try:
        pid_text, host = (lock.read_text().split() + ["", ""])[:2]
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    if host and host != socket.gethostname():
        return f"pid {pid} on {host}"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return f"pid {pid}"


__all__ = ["OUTPUTS", "RunDirError", "RunDirectory", "read_config",
           "write_text"]
