"""YAML experiment files: every option of a command, checked by name and type.

A file such as::

    dataset: heart
    models: [generic, conditional-bias]   # or "generic,conditional-bias"
    seeds: 5
    jobs: 2
    output: results/heart

gives the defaults of ``noharm run --config exp.yaml``; options on the command line
still win.  Keys may be written with ``-`` or ``_``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError


@dataclass(frozen=True)
class OptionSpec:
    """What a config key may hold: ``kind`` is int, float, bool, str, path or list."""

    name: str
    kind: str
    multiple: bool = False


def read_config(path: str | Path, options: dict[str, OptionSpec]) -> dict[str, Any]:
    """Read a YAML mapping and check every key and value against ``options``.

    Returns ``{option name: value}`` with names in their Python spelling.

    Raises
    ------
    ConfigError
        The file is missing or not YAML, is not a mapping, has an unknown key (named,
        with the closest known one) or a value of the wrong type.
    """
    import yaml

    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config file {path} is a directory; give the YAML file itself "
                          f"(e.g. --config {path}/experiment.yaml).")
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; check the path.")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"config file {path} is not valid YAML{at}: "
                          f"{getattr(exc, 'problem', exc)}.") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must be a mapping of option: value, got a "
                          f"{type(raw).__name__}.")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = str(key).replace("-", "_")
        if name not in options:
            import difflib
            close = difflib.get_close_matches(name, list(options), n=1)
            hint = f" (did you mean {close[0].replace('_', '-')!r}?)" if close else ""
            raise ConfigError(f"config file {path}: unknown key {key!r}{hint}; known keys: "
                              + ", ".join(sorted(o.replace("_", "-") for o in options)) + ".")
        out[name] = _coerce(path, str(key), value, options[name])
    return out


_KIND_NAMES = {"int": "an integer", "float": "a number", "bool": "true or false",
               "str": "a string", "path": "a path", "list": "a list"}


def _coerce(path: Path, key: str, value: Any, spec: OptionSpec) -> Any:
    def bad() -> ConfigError:
        want = _KIND_NAMES[spec.kind]
        if spec.multiple:
            want = f"a list of {want.split(' ', 1)[1]}s" if spec.kind != "bool" else "a list"
        return ConfigError(f"config file {path}: {key} must be {want}, got {value!r} "
                           f"({type(value).__name__}).")

    if spec.multiple:
        items = value if isinstance(value, list) else [value]
        return [_coerce(path, key, v, OptionSpec(spec.name, spec.kind)) for v in items]
    if value is None:
        return None
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise bad()
        return value
    if spec.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad()
        return value
    if spec.kind == "float":
        if isinstance(value, str):          # YAML 1.1 reads 1e-3 (no dot) as text
            try:
                return float(value.strip())
            except ValueError:
                raise bad() from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad()
        return float(value)
    if spec.kind in ("str", "path"):
        if isinstance(value, list) and spec.kind == "str" and all(
                isinstance(v, str) for v in value):
            return ",".join(value)          # models: [generic, decoupled]
        if isinstance(value, (bool, list, dict)) or value is None:
            raise bad()
        return str(value)
    raise bad()  # pragma: no cover
