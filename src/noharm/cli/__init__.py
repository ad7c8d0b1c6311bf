"""The ``noharm`` command line: one module per command, assembled here.

Every bad input ends in one line on stderr and exit code 2, never a traceback.
"""
from __future__ import annotations

import functools
import sys

import click
import typer

from .. import __version__
from . import audit, data
from .debias import EXAMPLES as DEBIAS_EX, debias
from .fairness import EXAMPLES as FAIRNESS_EX, fairness
from .mixed import EXAMPLES as MIXED_EX, mixed
from .personalize import EXAMPLES as PERSONALIZE_EX, personalize
from .predict import EXAMPLES as PREDICT_EX, predict
from .report import report


def _version(value: bool) -> None:
    if value:
        typer.echo(f"noharm {__version__}")
        raise typer.Exit()


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Personalize clinical prediction models without harm.")


@app.callback()
def _root(version: bool = typer.Option(False, "--version", is_eager=True, callback=_version,
                                       help="Print the version and exit.")) -> None:
    """Personalize clinical prediction models without harm."""


@functools.wraps(personalize)
def run(*args, **kw):
    if not kw.get("quiet"):
        typer.echo("note: `noharm run` is now `noharm personalize`; running that.", err=True)
    return personalize(*args, **kw)


app.command("personalize", epilog=PERSONALIZE_EX)(personalize)
app.command("run", epilog=PERSONALIZE_EX, help="Alias of `noharm personalize`.")(run)
app.command("fairness", epilog=FAIRNESS_EX)(fairness)
app.command("mixed", epilog=MIXED_EX)(mixed)
app.command("debias", epilog=DEBIAS_EX)(debias)
app.add_typer(audit.app, name="audit")
app.command("report")(report)
app.command("predict", epilog=PREDICT_EX)(predict)
app.add_typer(data.app, name="data")


# typer >= 0.22 raises the exceptions of the click it vendors; older typers raise click's.
try:
    from typer._click import exceptions as _vendored
    _USAGE: tuple = (click.exceptions.UsageError, _vendored.UsageError)
except ImportError:  # pragma: no cover
    _USAGE = (click.exceptions.UsageError,)


def main() -> int:
    """Console-script entry point: usage errors too end as one line and exit code 2."""
    try:
        code = app(standalone_mode=False)
    except _USAGE as exc:
        typer.echo(f"error: {exc.format_message()}", err=True)
        return 2
    return code if isinstance(code, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
