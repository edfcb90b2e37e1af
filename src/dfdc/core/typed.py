"""A generic typed-YAML loader: a frozen dataclass built from a plain dict, every key checked.

An unknown or mistyped key stops the run with one line that names it (``params.yaml: unknown
key 'data.sourc' (did you mean 'data.source'?)``) instead of silently falling back to a
default. A numeric field declares its allowed range where it is defined (:func:`ranged`), and a
value outside it stops the run the same way, before it can reach a stage (``faces.frames: -5``
once overwrote every face file with an empty one). Nothing here knows the workspace's sections
(:mod:`dfdc.core.config` does).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Literal

from dfdc.core.errors import UserError

__all__ = ["ConfigError", "Range", "build", "field_range", "ranged", "to_dict"]


class ConfigError(UserError, ValueError):
    """A problem in ``params.yaml``; its message is one line that names the key."""


_RANGE = "dfdc.range"  # the field metadata key that holds a field's Range


@dataclasses.dataclass(frozen=True)
class Range:
    """The values a numeric key may take: ``[lo, hi]``, an end excluded when open."""

    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False

    def __contains__(self, value: float) -> bool:
        lo, hi = self.lo, self.hi
        return (lo < value if self.lo_open else lo <= value) and (
            value < hi if self.hi_open else value <= hi
        )

    def __str__(self) -> str:
        left, right = "(" if self.lo_open else "[", ")" if self.hi_open else "]"
        return f"{left}{self.lo:g}, {self.hi:g}{right}"


def ranged(
    default: Any, lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False
) -> Any:
    """A numeric dataclass field (a number, or a tuple of numbers checked one by one) with the
    range its values must lie in; :func:`build` checks every value given against it. The one
    way a schema declares a range, so the check and its message are the same for every key."""
    return dataclasses.field(default=default, metadata={_RANGE: Range(lo, hi, lo_open, hi_open)})


def field_range(f: dataclasses.Field) -> Range | None:
    """The range :func:`ranged` declared for a field (None: not a ranged field)."""
    return f.metadata.get(_RANGE)


def _numbers(value: Any) -> list[float]:
    """The numbers in a field's value (itself, or a tuple's items); strings and None are not."""
    items = value if isinstance(value, tuple | list) else (value,)
    return [v for v in items if isinstance(v, int | float) and not isinstance(v, bool)]


def build(
    cls: type, raw: Any, prefix: str = "", source: str = "params.yaml", base: Any = None
) -> Any:
    """``cls`` from ``raw``; keys not given keep ``base``'s values (the field's default
    instance), so a section whose default differs from its class's keeps that default."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: key '{prefix.rstrip('.')}' must be a mapping")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    names = list(fields)
    for key in raw:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            raise ConfigError(f"{source}: unknown key '{prefix}{key}'{hint}")
    base = cls() if base is None else base
    kwargs = {}
    for name in names:
        if name in raw:
            tp, key = hints[name], f"{prefix}{name}"
            if dataclasses.is_dataclass(tp):
                kwargs[name] = build(tp, raw[name], key + ".", source, getattr(base, name))
            else:
                kwargs[name] = _coerce(tp, raw[name], key, source)
                allowed = field_range(fields[name])
                bad = [v for v in _numbers(raw[name]) if allowed and v not in allowed]
                if bad:
                    value = raw[name]
                    got = f"{bad[0]} in {list(value)}" if isinstance(value, list | tuple) else value
                    raise ConfigError(f"{source}: key '{key}' must be in {allowed}, got {got}")
    try:
        return dataclasses.replace(base, **kwargs)
    except ConfigError as exc:  # a rule between keys (a schema's __post_init__)
        msg = str(exc)
        raise ConfigError(msg if msg.startswith(f"{source}: ") else f"{source}: {msg}") from None


def _coerce(tp: Any, value: Any, key: str, source: str) -> Any:
    if dataclasses.is_dataclass(tp):
        return build(tp, value, prefix=key + ".", source=source)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise ConfigError(f"{source}: key '{key}' must be one of {choices}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        errors = []
        for alternative in inner:  # the first alternative that takes the value
            try:
                return _coerce(alternative, value, key, source)
            except ConfigError as exc:
                errors.append(str(exc).split(": ", 1)[1])
        raise ConfigError(f"{source}: " + "; or ".join(errors))
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{source}: key '{key}' must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, key, source) for v in value)
        if len(value) != len(args):
            raise ConfigError(f"{source}: key '{key}' must have {len(args)} items, got {value!r}")
        return tuple(_coerce(a, v, key, source) for a, v in zip(args, value, strict=True))
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{source}: key '{key}' must be a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: key '{key}' must be an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: key '{key}' must be true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: key '{key}' must be a string, got {value!r}")
        return value
    raise ConfigError(f"{source}: key '{key}' has an unsupported type {tp!r}")  # pragma: no cover


def to_dict(obj: Any) -> dict[str, Any]:
    """Plain, YAML/JSON-safe dict of a config (tuples become lists) for saving beside outputs."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(obj))
