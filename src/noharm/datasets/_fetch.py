"""Data file resolution: explicit path > NOHARM_DATA_DIR > user cache > the copy shipped
inside the package (Heart only) > download (sha256).

The user cache is ``$NOHARM_CACHE_DIR``, else ``$XDG_CACHE_HOME/noharm``, else
``~/.cache/noharm``.  Downloads are checked against the published sha256
before they are moved into the cache; the shipped copy is checked too.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import ChecksumError, DataNotFoundError

#: the files shipped inside the package (``noharm/datasets/data/<subdir>/<filename>``)
PACKAGED = {("uci_heart", "processed.cleveland.data")}


def packaged(subdir: str, filename: str) -> Path | None:
    """The copy of ``filename`` shipped inside the package, or None."""
    if (subdir, filename) not in PACKAGED:
        return None
    p = Path(__file__).resolve().parent / "data" / subdir / filename
    return p if p.is_file() else None


def cache_dir() -> Path:
    if os.environ.get("NOHARM_CACHE_DIR"):
        return Path(os.environ["NOHARM_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "noharm"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _verify(path: Path, sha256: str | None) -> Path:
    if sha256 is not None:
        got = sha256_of(path)
        if got != sha256:
            raise ChecksumError(
                f"{path} fails its checksum (sha256 {got[:12]}..., expected {sha256[:12]}...); "
                "the file is corrupt or a different version: delete it and fetch the original.")
    return path


def _in_dir(root: Path, subdir: str, filename: str) -> Path | None:
    for cand in (root / subdir / filename, root / filename):
        if cand.is_file():
            return cand
    return None


def resolve(subdir: str, filename: str, *, sha256: str | None, url: str | None,
            path: str | os.PathLike | None = None, timeout: float = 20.0) -> Path:
    """Return a verified local path of ``filename``.

    Parameters
    ----------
    subdir : folder of the dataset under a data directory (``uci_heart``).
    filename : file name (``processed.cleveland.data``).
    sha256 : expected checksum (None skips the check).
    url : where to download from when no local copy exists (None: no download).
    path : an explicit file, or a directory holding it; wins over everything else.
    """
    if path is not None:
        p = Path(path)
        if p.is_dir():
            found = _in_dir(p, subdir, filename)
            if found is None:
                raise DataNotFoundError(f"{filename} is not in {p} (nor in {p / subdir}); "
                                        "pass the file itself or the folder that holds it.")
            return _verify(found, sha256)
        if not p.is_file():
            raise DataNotFoundError(f"data file {p} does not exist; check the path.")
        return _verify(p, sha256)
    env = os.environ.get("NOHARM_DATA_DIR")
    if env:
        found = _in_dir(Path(env), subdir, filename)
        if found is not None:
            return _verify(found, sha256)
    cached = cache_dir() / subdir / filename
    if cached.is_file():
        return _verify(cached, sha256)
    shipped = packaged(subdir, filename)
    if shipped is not None:
        return _verify(shipped, sha256)
    if url is None:
        raise DataNotFoundError(
            f"{filename} not found: set NOHARM_DATA_DIR to the folder holding {subdir}/ "
            "or pass the file's path.")
    return _download(url, cached, sha256, timeout)


def locate(subdir: str, filename: str, url: str | None) -> str:
    """Where :func:`resolve` would find ``filename`` now, without reading or fetching it."""
    env = os.environ.get("NOHARM_DATA_DIR")
    if env:
        found = _in_dir(Path(env), subdir, filename)
        if found is not None:
            return f"{found} (NOHARM_DATA_DIR)"
    cached = cache_dir() / subdir / filename
    if cached.is_file():
        return f"{cached} (user cache)"
    shipped = packaged(subdir, filename)
    if shipped is not None:
        return f"{shipped} (shipped with noharm)"
    if url is not None:
        return f"not here yet: downloaded on first use to {cached}"
    return (f"not found: put {subdir}/{filename} under NOHARM_DATA_DIR or the user cache "
            f"({cache_dir()}), or pass the file")


def _download(url: str, dest: Path, sha256: str | None, timeout: float) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            shutil.copyfileobj(resp, out)
        _verify(Path(tmp), sha256)
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise DataNotFoundError(
            f"could not download {url} ({getattr(exc, 'reason', exc)}); you may be offline: "
            f"set NOHARM_DATA_DIR to a folder holding {dest.parent.name}/{dest.name} "
            "or pass the file's path.") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest
