"""One error mapper for every command: a NoharmError (or an unwritable output) becomes
one line on stderr and exit code 2; NOHARM_DEBUG=1 shows the traceback instead."""
from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import typer

from ..errors import NoharmError


def fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def friendly(fn: Callable) -> Callable:
    """Wrap a command so that bad input ends in one line and exit code 2."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except NoharmError as exc:
            if os.environ.get("NOHARM_DEBUG"):
                raise
            fail(str(exc))
        except PermissionError as exc:
            fail(f"cannot write {exc.filename}: permission denied; choose another output.")
        except OSError as exc:
            if exc.filename is None:
                raise
            fail(f"cannot use {exc.filename} ({exc.strerror}).")
    return wrapper
