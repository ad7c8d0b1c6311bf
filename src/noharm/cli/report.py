"""``noharm report``: one self-contained HTML file of a run directory."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import ConfigError
from ._errors import friendly


@friendly
def report(
    directory: Annotated[Path, typer.Argument(help="The --output DIR of a noharm study or "
                                              "audit.")],
    out: Annotated[Optional[Path], typer.Option(help="HTML file to write (default "
                                                "DIR/report.html); a file that is not a "
                                                "noharm report is never replaced.")] = None,
) -> None:
    """Render DIR's tables and plots as one self-contained HTML file (after checking that
    its split plan and result files are those its config.json records).  An existing
    report written by noharm is replaced; any other file is left alone (an error)."""
    from ..report.html import write_report
    if out is not None and out.is_dir():
        raise ConfigError(f"--out {out} is a directory; give a file name such as report.html.")
    try:
        path = write_report(directory, out)
    except OSError as exc:
        raise ConfigError(f"cannot write the report ({exc.strerror}: {exc.filename}); choose "
                          "another --out.") from None
    typer.echo(f"wrote {path}")
