"""Loading any saved noharm model, and checksum manifests of saved directories.

:func:`load_model` reads ``config.json`` and hands the directory to the class it names:
a network (:meth:`NetClassifier.load <noharm.models.NetClassifier.load>`, weights in
``model.safetensors``) or a scikit-learn reference
(:meth:`SklearnRuns.load <noharm.models.reference.SklearnRuns.load>`, estimators in
``models.skops``).  Neither format uses pickle.

:func:`write_checksums` writes ``checksums.json``, the sha256 of every file under a
directory (a saved model, a study's output); :func:`verify_checksums` refuses the
directory if any file was changed, removed or added since.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import PersistenceError
from .base import _REGISTRY as _NET_REGISTRY
from .base import NetClassifier, parse_model_config
from .reference import _REGISTRY as _SKLEARN_REGISTRY
from .reference import SklearnRuns

CHECKSUMS_FILE = "checksums.json"
CHECKSUMS_FORMAT = "noharm-checksums"
CHECKSUMS_FORMAT_VERSION = 1
_CHUNK = 1 << 20


# ---------------------------------------------------------------------- model loading
def read_config(path: str | Path) -> tuple[Path, dict]:
    """The checked ``config.json`` of a saved model directory (any kind of model):
    present, valid JSON, noharm's model format in the version this noharm reads."""
    path = Path(path)
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        hint = (" (it holds guard.json: a guarded model; load it with "
                "GuardedClassifier.load)" if (path / "guard.json").is_file() else "")
        raise PersistenceError(f"{path} is not a saved noharm model (no config.json){hint}; "
                               "save one with model.save(dir).")
    return path, parse_model_config(path, cfg_file)


def load_model(path: str | Path) -> Any:
    """Load any model saved with ``model.save(dir)``: the class named in its
    ``config.json`` loads it (a network, e.g. GenericClassifier, or a scikit-learn
    reference, ReferenceClassifier / ReferenceRegressor).  (The registries hold every
    class of :mod:`noharm.models`, which Python imports before this module.)

    Raises
    ------
    PersistenceError
        The directory is not a saved model, is damaged, or names a class this noharm
        does not know.
    """
    path, cfg = read_config(path)
    name = str(cfg.get("class", ""))
    if name in _NET_REGISTRY:
        return NetClassifier.load(path)
    if name in _SKLEARN_REGISTRY:
        return SklearnRuns.load(path)
    from .forms import FORMS
    if name in FORMS:
        return FORMS[name].load(path)
    known = sorted(set(_NET_REGISTRY) | set(_SKLEARN_REGISTRY) | set(FORMS))
    raise PersistenceError(f"{path} holds a model of class {name!r}, which this noharm "
                           f"({__version__}) does not know (known: {', '.join(known)}); "
                           "load it with the noharm version that saved it, or re-save it.")


@contextlib.contextmanager
def saving_to(path: Path):
    """Create ``path`` and write a saved model into it; a file system error (read-only
    disk, no space) is one PersistenceError naming the directory."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        yield path
    except OSError as exc:
        raise PersistenceError(f"cannot save the model to {path} ({exc.strerror}); choose a "
                               "writable directory.") from None


# ---------------------------------------------------------------------- checksums
def _sha256(file: Path) -> str:
    h = hashlib.sha256()
    with open(file, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _files(directory: Path) -> list[str]:
    """Every regular file under ``directory`` as a relative posix path, sorted, without
    the top-level checksums.json; a symbolic link or special file is an error."""
    out = []
    for root, dirs, files in os.walk(directory, followlinks=False):
        for name in sorted(dirs + files):
            full = Path(root) / name
            rel = full.relative_to(directory).as_posix()
            mode = os.lstat(full).st_mode
            if stat.S_ISLNK(mode):
                raise PersistenceError(
                    f"{rel} in {directory} is a symbolic link; checksums cover only real "
                    "files: replace the link with a copy of its target.")
            if name in files and not stat.S_ISREG(mode):
                raise PersistenceError(f"{rel} in {directory} is not a regular file; remove "
                                       "it before writing or verifying checksums.")
            if name in files and rel != CHECKSUMS_FILE:
                out.append(rel)
    return sorted(out)


def _directory(directory: str | Path) -> Path:
    directory = Path(directory)
    if not directory.is_dir():
        raise PersistenceError(f"{directory} is not a directory; give the directory a model "
                               "or a study was saved to.")
    return directory


def write_checksums(directory: str | Path) -> Path:
    """Write ``directory/checksums.json``: the sha256 of every regular file under the
    directory (recursively, relative posix paths, sorted; checksums.json itself left
    out).  Returns its path.  A symbolic link is a PersistenceError."""
    directory = _directory(directory)
    try:
        files = {rel: _sha256(directory / rel) for rel in _files(directory)}
        manifest = {"format": CHECKSUMS_FORMAT, "format_version": CHECKSUMS_FORMAT_VERSION,
                    "algorithm": "sha256", "files": files}
        out = directory / CHECKSUMS_FILE
        out.write_text(json.dumps(manifest, indent=2) + "\n")
    except OSError as exc:
        raise PersistenceError(f"cannot write the checksums of {directory} ({exc}); "
                               "check that it is readable and writable.") from None
    return out


def _read_manifest(directory: Path) -> dict[str, str]:
    file = directory / CHECKSUMS_FILE
    if not file.is_file():
        raise PersistenceError(f"{directory} has no {CHECKSUMS_FILE}; write one with "
                               "write_checksums(dir) right after saving (or re-save / "
                               "re-run).")
    try:
        manifest = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PersistenceError(f"{file} cannot be read as JSON ({exc}); it is damaged: "
                               "re-save or re-run, then write_checksums(dir).") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(manifest, dict) or manifest.get("format") != CHECKSUMS_FORMAT or \
            manifest.get("format_version") != CHECKSUMS_FORMAT_VERSION or \
            manifest.get("algorithm") != "sha256" or not isinstance(files, dict) or \
            not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise PersistenceError(
            f"{file} is malformed (not a {CHECKSUMS_FORMAT} manifest, version "
            f"{CHECKSUMS_FORMAT_VERSION}, sha256, with a 'files' mapping of paths to "
            "digests); re-save or re-run, then write_checksums(dir).")
    return files


def verify_checksums(directory: str | Path) -> None:
    """Check ``directory`` against its ``checksums.json``.

    Raises
    ------
    PersistenceError
        checksums.json is missing or malformed, a listed file is missing, a file's
        sha256 differs (the first such file is named), an unlisted file is present, or
        the directory holds a symbolic link.
    """
    directory = _directory(directory)
    expected = _read_manifest(directory)
    try:
        present = _files(directory)
        missing = sorted(set(expected) - set(present))
        if missing:
            raise PersistenceError(
                f"{missing[0]} is listed in {directory / CHECKSUMS_FILE} but missing"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                + ": the directory was modified after it was saved; re-save or re-run.")
        extra = [rel for rel in present if rel not in expected]
        if extra:
            raise PersistenceError(
                f"{extra[0]} in {directory} is not listed in {CHECKSUMS_FILE}"
                + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else "")
                + ": a file was added after the directory was saved; remove it, or "
                "re-save or re-run.")
        for rel in present:
            if _sha256(directory / rel) != expected[rel]:
                raise PersistenceError(
                    f"{rel} in {directory} differs from its checksum: the directory was "
                    "modified after it was saved; re-save or re-run.")
    except OSError as exc:
        raise PersistenceError(f"cannot read {directory} to verify its checksums ({exc})."
                               ) from None


__all__ = ["CHECKSUMS_FILE", "load_model", "read_config", "verify_checksums",
           "write_checksums"]
