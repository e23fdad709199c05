"""Build frozen config dataclasses from plain mappings (parsed TOML).

One representation only: the dataclasses *are* the configuration; this module
only checks keys and types on the way in and turns them back into plain
mappings on the way out (for ``summary.json`` and saved configs).
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cogflex.errors import ConfigError, shown

__all__ = ["from_mapping", "to_mapping", "read_toml"]

def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file, reporting syntax errors as :class:`ConfigError`."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError("file", f"no such file: {path}") from None
    except IsADirectoryError:
        raise ConfigError("file", f"{path} is a directory, not a TOML file") from None
    except OSError as exc:
        raise ConfigError("file", f"cannot read {path} ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError("toml", f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
                                  "TOML files are UTF-8", source=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("toml", f"invalid TOML ({exc})", source=str(path)) from None


def from_mapping[T](cls: type[T], data: Mapping[str, Any], *, section: str = "") -> T:
    """Construct dataclass ``cls`` from ``data``, recursing into nested dataclasses.

    Unknown keys and values of the wrong type raise :class:`ConfigError`
    naming the dotted field; the dataclass' own ``__post_init__`` validates
    values.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(section or "config", f"expected a table, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields))
        raise ConfigError(_join(section, _key_name(unknown[0])), f"unknown key (known keys: {known})")
    required = [name for name, f in fields.items()
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [name for name in required if name not in data]
    if missing:
        raise ConfigError(_join(section, missing[0]), "missing (required)")
    kwargs = {name: _convert(hints[name], value, _join(section, name)) for name, value in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise exc.within(section or None) from None


def to_mapping(obj: Any) -> Any:
    """Turn a config dataclass (recursively) into JSON/TOML-friendly values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_mapping(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple | list):
        return [to_mapping(v) for v in obj]
    if isinstance(obj, Mapping):
        return {k: to_mapping(v) for k, v in obj.items()}
    return obj


def _key_name(key: str) -> str:
    """A key as written in a message: plain keys as they are, anything unusual as its Python repr."""
    return key if key and key.isprintable() and key.strip() == key and " " not in key else repr(key)


def _join(section: str, name: str) -> str:
    return f"{section}.{name}" if section else name


def _convert(hint: Any, value: Any, field: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(arg, value, field)
            except ConfigError as exc:
                errors.append(exc.message)
        raise ConfigError(field, "; ".join(errors))
    if dataclasses.is_dataclass(hint):
        return from_mapping(hint, value, section=field)
    if origin is typing.Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise ConfigError(field, f"must be one of {choices}, got {shown(value)}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(field, f"expected a list, got {type(value).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{field}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(field, f"expected {len(args)} values, got {len(value)}")
        return tuple(_convert(a, v, f"{field}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(field, f"expected a number, got {shown(value)}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(field, f"expected an integer, got {shown(value)}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(field, f"expected true or false, got {shown(value)}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(field, f"expected a string, got {shown(value)}")
        return value
    if hint is dict or origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(field, f"expected a table, got {shown(value)}")
        return value
    return value
