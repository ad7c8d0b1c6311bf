"""``--config FILE`` (YAML defaults for any option of a command) and ``--print-config``."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from ..errors import NoharmError

_KINDS = {"int": "int", "float": "float", "bool": "bool", "str": "str", "Path": "path",
          "list[str]": "str"}


def _option_kind(p: Any) -> str:
    bare = p.bare_type() if callable(getattr(p, "bare_type", None)) else None
    if bare is None:          # a plain click parameter
        bare = {"integer": "int", "boolean": "bool", "text": "str"}.get(p.type.name,
                                                                       p.type.name)
    return _KINDS.get(str(bare), "str")


def apply_config_file(ctx: typer.Context, param: Any, value: Optional[Path]) -> Optional[Path]:
    """Eager ``--config``: the file's values become the defaults of the other options."""
    if value is None or ctx.resilient_parsing:
        return value
    from ..experiments.config_file import OptionSpec, read_config
    from ._errors import fail
    specs = {p.name: OptionSpec(p.name, _option_kind(p), bool(getattr(p, "multiple", False)))
             for p in ctx.command.params if p.name not in ("config", "print_config")}
    try:
        values = read_config(value, specs)
    except NoharmError as exc:
        fail(str(exc))
    ctx.default_map = {**(ctx.default_map or {}), **values}
    return value


def show_config(ctx: typer.Context) -> None:
    """``--print-config``: the effective options as YAML."""
    import yaml
    shown = {k.replace("_", "-"): (str(v) if isinstance(v, Path) else
                                   list(v) if isinstance(v, tuple) else v)
             for k, v in ctx.params.items() if k not in ("config", "print_config")}
    typer.echo(yaml.safe_dump(shown, sort_keys=False).rstrip())
