"""One error mapper for every command: a NoharmError (or an unwritable output) becomes
one line on stderr and exit code 2; NOHARM_DEBUG=1 shows the traceback instead."""
from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import typer

from ..errors import NoharmError


#: estimator / study names whose command-line option has another name
_ALIASES = {"n_seeds": "--seeds", "n_folds": "--folds", "n_bias": "--bias-layers",
            "n_boot": "--n-boot", "n_jobs": "--jobs", "n_samples": "--n-samples"}


def cli_names(message: str) -> str:
    """The message with the Python names of the running command's options replaced by
    the options a user types (``n_seeds`` -> ``--seeds``, ``guard_alpha`` ->
    ``--guard-alpha``); names without an underscore are left alone (common words)."""
    import re

    from ..experiments.rundir import click_context
    ctx = click_context()
    names = dict(_ALIASES)
    if ctx is not None:
        for p in ctx.command.params:
            opts = [o for o in getattr(p, "opts", []) if o.startswith("--")]
            if p.name and "_" in p.name and opts:
                names.setdefault(p.name, opts[0])
        for alias, flag in _ALIASES.items():          # only options this command has
            if flag not in {o for p in ctx.command.params for o in getattr(p, "opts", [])}:
                names.pop(alias, None)
    for name in sorted(names, key=len, reverse=True):
        message = re.sub(rf"(?<![\w.-]){re.escape(name)}\b", names[name], message)
    return message


def fail(message: str) -> None:
    typer.echo(f"error: {cli_names(message)}", err=True)
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
