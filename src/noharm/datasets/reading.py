"""Reading a user's table as it comes: delimiter sniffing, header-less files, missing-value
codes (global or per column), decimal commas, header names with spaces around them, any
extension when the reading options say it is text; a truncated or corrupt gzip file is one
error naming it."""
from __future__ import annotations

import csv
import gzip
import os
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataNotFoundError, DatasetError

#: Extensions read as delimited text without being told.
TEXT_EXTENSIONS = (".csv", ".csv.gz", ".txt", ".tsv", ".tsv.gz")
PARQUET_EXTENSIONS = (".parquet", ".pq")
SNIFFED = ",;\t"
#: ``--decimal`` values and their spelled-out aliases
DECIMALS = {".": ".", ",": ",", "dot": ".", "point": ".", "comma": ","}
_UNESCAPED_COMMA = re.compile(r"(?<!\\),")


def split_codes(text: str) -> list[str]:
    """The comma-separated pieces of one ``--na-values`` value (``\\,`` is a literal comma);
    empty pieces are left out."""
    pieces = (p.replace("\\,", ",").strip() for p in _UNESCAPED_COMMA.split(str(text)))
    return [p for p in pieces if p]


@dataclass(frozen=True)
class ReadOptions:
    """How to read a delimited file (the CLI's ``--sep``, ``--names``, ``--na-values``,
    ``--decimal``).

    Parameters
    ----------
    sep : delimiter; ``None`` sniffs ``,`` ``;`` or tab from the first lines.
    names : column names of a file without a header row (one per column).
    na_values : codes that mean "missing": ``"?"`` for every column, ``"chol=0"`` for one
        column only (compared as a number when the column is numeric).  Each value may
        list several codes separated by commas (``"?,NA"``); after ``col=`` the further
        codes belong to that column too (``"chol=0,-9"``); ``\\,`` is a literal comma.
    decimal : the decimal mark of the numbers, ``"."`` (default) or ``","`` (European
        exports, usually with ``sep=";"``).
    """

    sep: str | None = None
    names: tuple[str, ...] = ()
    na_values: tuple[str, ...] = field(default=())
    decimal: str = "."

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(str(n).strip() for n in self.names))
        object.__setattr__(self, "na_values", tuple(str(v) for v in self.na_values))
        if self.sep is not None:
            sep = {"\\t": "\t", "tab": "\t"}.get(self.sep, self.sep)
            if len(sep) != 1:
                raise ConfigError(f"--sep must be one character (',', ';', 'tab'), got "
                                  f"{self.sep!r}.")
            object.__setattr__(self, "sep", sep)
        decimal = DECIMALS.get(str(self.decimal or ".").strip().lower())
        if decimal is None:
            raise ConfigError(f"--decimal must be '.' or ',' (the decimal mark of the numbers), "
                              f"got {self.decimal!r}.")
        object.__setattr__(self, "decimal", decimal)
        if self.sep is not None and self.sep == decimal:
            raise ConfigError(f"--sep and --decimal are both {decimal!r}; a file with decimal "
                              "commas separates its fields with another character, usually "
                              "--sep ';'.")
        if self.names:
            if any(not n for n in self.names):
                raise ConfigError("--names has an empty name; give one name per column, "
                                  "comma-separated.")
            dup = sorted({n for n in self.names if self.names.count(n) > 1})
            if dup:
                raise ConfigError(f"--names repeats {dup}; give each column a different name.")

    @property
    def text_forced(self) -> bool:
        return self.sep is not None or bool(self.names)

    def split_na(self) -> tuple[list[str], dict[str, list[str]]]:
        """(codes for every column, {column: codes}): each value split at its commas, the
        codes after a ``col=`` piece belonging to that column."""
        glob: list[str] = []
        per: dict[str, list[str]] = {}
        for v in self.na_values:
            column = None
            for piece in split_codes(v):
                if "=" in piece and not piece.startswith("="):
                    column, piece = (t.strip() for t in piece.split("=", 1))
                if column is None:
                    glob.append(piece)
                elif piece:
                    per.setdefault(column, []).append(piece)
        return glob, per

    def to_dict(self) -> dict:
        return {"sep": self.sep, "names": list(self.names), "na_values": list(self.na_values),
                "decimal": self.decimal}


#: What reading a broken gzip file raises (EOFError: truncated; zlib.error, OSError:
#: corrupt or not gzip at all)
_GZIP_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)


def _unreadable(path: Path, exc: BaseException, gz: bool) -> DatasetError:
    """The one error of a file that cannot be read (a broken gzip file said so)."""
    if gz and isinstance(exc, _GZIP_ERRORS):
        return DatasetError(f"cannot read {path}: the gzip file is truncated or corrupt "
                            f"({exc}); copy or download it again (gzip -t {path.name} checks "
                            "it).")
    return DatasetError(f"cannot read {path}: {exc}")


def _sniff(path: Path, gz: bool, candidates: str = SNIFFED) -> str:
    opener = gzip.open if gz else open
    try:
        with opener(path, "rt", errors="replace") as f:
            sample = f.read(65536)
    except (OSError, *_GZIP_ERRORS) as exc:
        raise _unreadable(path, exc, gz) from None
    lines = [ln for ln in sample.splitlines()[:50] if ln.strip()]
    if not lines:
        return candidates[0]
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=candidates).delimiter
    except csv.Error:
        # the most frequent candidate that appears the same number of times on every line
        counts = {d: [ln.count(d) for ln in lines] for d in candidates}
        steady = [d for d, c in counts.items() if c[0] > 0 and len(set(c)) == 1]
        return max(steady, key=lambda d: counts[d][0]) if steady else candidates[0]


def strip_header(frame: pd.DataFrame, notes: list[str] | None = None) -> pd.DataFrame:
    """``frame`` with the spaces around its column names removed (a note in ``notes`` names
    them); two names that become the same are an error showing both exactly."""
    names = [str(c) for c in frame.columns]
    stripped = [n.strip() for n in names]
    if stripped == names:
        frame.columns = names
        return frame
    seen: dict[str, str] = {}
    for raw, new in zip(names, stripped):
        if new in seen:
            raise DatasetError(f"the columns {seen[new]!r} and {raw!r} differ only by spaces "
                               "around the name; rename one of them in the file.")
        seen[new] = raw
    changed = [(r, n) for r, n in zip(names, stripped) if r != n]
    if notes is not None:
        notes.append("column name(s) " + ", ".join(f"{r!r}" for r, _ in changed[:5])
                     + (", ..." if len(changed) > 5 else "")
                     + " have spaces around them: read as "
                     + ", ".join(f"{n!r}" for _, n in changed[:5])
                     + (", ..." if len(changed) > 5 else "") + ".")
    frame.columns = stripped
    return frame


def read_table(path: str | os.PathLike, options: ReadOptions | None = None, *,
               notes: list[str] | None = None) -> pd.DataFrame:
    """Read a delimited text file (``.csv``, ``.tsv``, ``.txt``, gzip too, or any extension
    when ``sep`` or ``names`` is given) or a Parquet file, applying the missing-value codes.

    Spaces around the header's names are removed (a note is appended to ``notes``); a
    truncated or corrupt gzip file is a :class:`~noharm.errors.DatasetError` naming it.
    """
    opts = options or ReadOptions()
    p = Path(path)
    if p.is_dir():
        raise DatasetError(f"{p} is a directory; give the data file itself (e.g. "
                           f"{p}/data.csv).")
    if not p.is_file():
        raise DataNotFoundError(f"data file {p} does not exist; check the path.")
    name = p.name.lower()
    if name.endswith(PARQUET_EXTENSIONS) and not opts.text_forced:
        try:
            frame = pd.read_parquet(p)
        except Exception as exc:  # pyarrow raises many types for unreadable files
            raise DatasetError(f"cannot read {p}: {exc}") from None
        return apply_na_values(strip_header(frame, notes), opts)
    if not (name.endswith(TEXT_EXTENSIONS) or opts.text_forced):
        raise DatasetError(
            f"{p} has an unknown file type; use .csv, .tsv, .txt (gzip too) or .parquet, or "
            "say it is delimited text with --sep (e.g. --sep ',') and --names if it has no "
            "header row.")
    gz = name.endswith(".gz")
    candidates = SNIFFED.replace(opts.decimal, "")      # a decimal comma is no delimiter
    sep = opts.sep or ("\t" if name.endswith((".tsv", ".tsv.gz")) else
                       _sniff(p, gz, candidates))
    glob, _ = opts.split_na()
    if opts.names:
        width = _first_width(p, gz, sep)
        if width is not None and width != len(opts.names):
            raise DatasetError(f"{p} has {width} columns but --names gives {len(opts.names)}; "
                               "give one name per column.")
    try:
        frame = pd.read_csv(p, sep=sep, header=None if opts.names else "infer",
                            names=list(opts.names) or None, na_values=glob or None,
                            skipinitialspace=True, index_col=False, decimal=opts.decimal)
    except Exception as exc:  # pandas raises many types for unreadable files
        raise _unreadable(p, exc, gz) from None
    if opts.names and frame.shape[1] != len(opts.names):
        raise DatasetError(f"{p} has {frame.shape[1]} columns but --names gives "
                           f"{len(opts.names)}; give one name per column.")
    if opts.names and len(frame) and _looks_like_header(frame.iloc[0], opts.names):
        raise DatasetError(f"the first row of {p} repeats the column names: the file has a "
                           "header row, so drop --names.")
    return apply_na_values(strip_header(frame, notes), opts)


def _first_width(path: Path, gz: bool, sep: str) -> int | None:
    """Fields on the first non-empty line (None if the file is empty)."""
    opener = gzip.open if gz else open
    try:
        with opener(path, "rt", errors="replace") as f:
            for line in f:
                if line.strip():
                    return len(next(csv.reader([line.rstrip("\r\n")], delimiter=sep)))
    except (OSError, *_GZIP_ERRORS) as exc:
        raise _unreadable(path, exc, gz) from None
    return None


def _looks_like_header(row: pd.Series, names: Sequence[str]) -> bool:
    return sum(str(v).strip() == n for v, n in zip(row.tolist(), names)) >= max(
        2, len(names) // 2)


def apply_na_values(frame: pd.DataFrame, opts: ReadOptions) -> pd.DataFrame:
    """Set the missing-value codes to NaN: global codes in every text column (also for
    Parquet), ``col=code`` in that column only."""
    glob, per = opts.split_na()
    unknown = [c for c in per if c not in frame.columns]
    if unknown:
        cols = ", ".join(map(str, list(frame.columns)[:12]))
        raise ConfigError(f"--na-values names column(s) {unknown} that the data does not "
                          f"have; available columns: {cols}.")
    frame = frame.copy()
    if glob:
        for c in frame.columns:
            if frame[c].dtype == object:
                frame[c] = frame[c].mask(frame[c].astype(str).str.strip().isin(glob))
    for col, codes in per.items():
        s = frame[col]
        hit = np.zeros(len(s), dtype=bool)
        for code in codes:
            if pd.api.types.is_numeric_dtype(s):
                try:
                    hit |= (s.to_numpy(dtype=float) == float(
                        code.replace(",", ".") if opts.decimal == "," else code))
                except ValueError:
                    raise ConfigError(f"--na-values {col}={code}: {col!r} is numeric, so the "
                                      "code must be a number.") from None
            else:
                hit |= s.astype(str).str.strip().eq(code).to_numpy()
        frame[col] = s.mask(hit)
    return frame


__all__ = ["DECIMALS", "ReadOptions", "apply_na_values", "read_table", "split_codes",
           "strip_header"]
