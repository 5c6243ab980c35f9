"""Typed ``KEY=VALUE`` overrides of dataclass configs, coerced by the dataclass's type hints.

The one place where text from ``--set`` (or a value read from ``farm.toml``) becomes a config field.
A field is coerced by its annotation, not by its default, so ``target_entropy: float | None = None``
takes ``-3`` as the float ``-3.0``; a value that does not parse is refused with the key and the
expected type (``lagrange=ture`` is an error, never a silent ``False``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_NONE = ("none", "null")


def type_name(hint: Any) -> str:
    """A readable name of a type hint: ``float | None``, ``tuple[int, ...]``."""
    if hint is type(None):
        return "None"
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(hint))
    if origin is tuple:
        args = typing.get_args(hint)
        return f"tuple[{type_name(args[0])}, ...]" if len(args) == 2 and args[1] is Ellipsis else str(hint)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in typing.get_args(hint))
    return getattr(hint, "__name__", str(hint))


def _coerce(hint: Any, value: Any) -> Any:
    """``value`` as type ``hint``; raises ValueError when it is not one."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if type(None) in options and (value is None or (isinstance(value, str) and value.strip().lower() in _NONE)):
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(option, value)
            except ValueError:
                continue
        raise ValueError
    if origin is typing.Literal:
        if value in typing.get_args(hint):
            return value
        raise ValueError
    if origin is tuple:
        (item, *rest) = typing.get_args(hint) or (Any,)
        if isinstance(value, str):
            text = value.strip().strip("()[]")
            value = [v for v in (p.strip() for p in text.split(",")) if v]
        if not isinstance(value, list | tuple):
            raise ValueError
        return tuple(_coerce(item, v) for v in value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError
    if hint is int:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            return int(value.strip().replace("_", ""))
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError
    if hint is float:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            return float(value.strip())
        raise ValueError
    if hint is str:
        if isinstance(value, str):
            return value
        raise ValueError
    if hint is Any:
        return value
    if isinstance(hint, type) and isinstance(value, hint):
        return value
    raise ValueError


def coerce_fields(config_cls: type, values: Mapping[str, Any], what: str | None = None) -> dict[str, Any]:
    """Check ``values`` against ``config_cls``'s fields and coerce each to its annotated type.

    Raises ValueError naming an unknown key (with the valid ones) or a value of the wrong type
    (with the expected type). ``what`` names the config in messages (default: the class name).
    """
    what = what or config_cls.__name__
    fields = {f.name for f in dataclasses.fields(config_cls)}
    hints = typing.get_type_hints(config_cls)
    out = {}
    for key, value in values.items():
        if key not in fields:
            raise ValueError(f"{what} has no setting {key!r}; settings are: {', '.join(sorted(fields))}")
        try:
            out[key] = _coerce(hints[key], value)
        except (ValueError, TypeError):
            raise ValueError(f"{what}: {key}={value!r} is not a {type_name(hints[key])}") from None
    return out


def parse_pairs(pairs: list[str]) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; refuses a pair without ``=``."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--set expects KEY=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key.strip()] = value.strip()
    return out
