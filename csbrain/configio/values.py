"""Typed values: a config dataclass from a (nested) mapping and back (see :mod:`csbrain.configio`).

:func:`coerce` converts one value to a field's annotation, one small function per kind of
annotation; :func:`from_dict` builds a dataclass field by field; :func:`to_dict` is the
inverse (JSON-ready). Errors name the dotted key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, Union

from csbrain._checks import CSBrainError, check_bool, closest

T = TypeVar("T")

__all__ = ["ConfigError", "coerce", "from_dict", "to_dict"]


class ConfigError(CSBrainError):
    """A configuration value, key or file is invalid (the message says which and why).

    ``key`` is the dotted key the message is about ("" when it is about the whole config).
    """

    def __init__(self, message: str, key: str = "") -> None:
        super().__init__(message)
        self.key = key


# ---------------------------------------------------------------------------- type parsing
def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (tuple, list):
        args = typing.get_args(tp)
        inner = _type_name(args[0]) if args else "value"
        return f"a list of {inner}"
    if origin is dict:
        args = typing.get_args(tp)
        return f"a mapping of str to {_type_name(args[1]) if args else 'value'}"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _fail(key: str, value: Any, tp: Any, extra: str = "") -> ConfigError:
    return ConfigError(f"{key}={value!r} is not valid; expected {_type_name(tp)}{extra}", key)


def _json(text: str, kind: type, what: str) -> Any:
    """Parse ``text`` as a JSON value of type ``kind`` (``what`` names it in errors)."""
    try:
        out = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"invalid JSON {what}: {err}") from None
    if not isinstance(out, kind):
        raise ValueError(f"not a {what}")
    return out


def _split_list(text: str) -> list[Any]:
    """``[1, 2]`` (JSON) or ``a,b,c`` -> a list ("" -> [])."""
    text = text.strip()
    if text.startswith("["):
        return _json(text, list, "list")
    return [p.strip() for p in text.split(",")] if text else []


def _split_dict(text: str) -> dict[str, Any]:
    """``{"a": 1}`` (JSON) or ``a:1,b:2`` -> a dict ("" -> {})."""
    text = text.strip()
    if text.startswith("{"):
        return _json(text, dict, "object")
    out = {}
    for part in text.split(",") if text else []:
        if ":" not in part:
            raise ValueError(f"entry {part!r} is not key:value")
        k, v = part.rsplit(":", 1)
        out[k.strip()] = v.strip()
    return out


def _as_dataclass(key: str, value: Any, tp: type) -> Any:
    """A nested dataclass: an instance, a table of its fields, or that table as JSON text."""
    if isinstance(value, tp):
        return value
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise _fail(key, value, tp, " (a table of its fields)") from None
    if not isinstance(value, Mapping):
        raise _fail(key, value, tp, " (a table of its fields)")
    return from_dict(tp, value, where=key)


def _as_union(key: str, value: Any, tp: Any) -> Any:
    """``X | Y | None``: ``none``/``null`` give None, else the first member that fits.

    With one member besides None, an error inside that member (an item of a list, a field of
    a table) is reported where it is rather than as the whole value.
    """
    args = typing.get_args(tp)
    if type(None) in args and (value is None or (isinstance(value, str)
                                                 and value.strip().lower() in ("none", "null"))):
        return None
    members = [a for a in args if a is not type(None)]
    for arg in members:
        try:
            return coerce(key, value, arg)
        except ConfigError as err:
            if len(members) == 1 and err.key != key:
                raise
    raise _fail(key, value, tp)


def _as_literal(key: str, value: Any, tp: Any) -> Any:
    allowed = typing.get_args(tp)
    for a in allowed:
        if value == a or (isinstance(value, str) and str(a) == value):
            return a
    near = closest(str(value), [str(a) for a in allowed], n=3) if isinstance(value, str) else []
    hint = f" Did you mean {', '.join(repr(n) for n in near)}?" if near else ""
    raise ConfigError(f"{key}={value!r} is not allowed; expected one of {list(allowed)}.{hint}",
                      key)


def _items(key: str, value: Any, tp: Any, kind: type) -> Any:
    """The list (``kind=list``) or table (``kind=dict``) of ``value``, parsing a string."""
    items = value
    if isinstance(value, str):
        try:
            items = (_split_dict if kind is dict else _split_list)(value)
        except ValueError as err:
            raise _fail(key, value, tp, f" ({err})") from None
    if not isinstance(items, Mapping if kind is dict else (list, tuple)):
        raise _fail(key, value, tp)
    return items


def _as_dict(key: str, value: Any, tp: Any) -> dict[str, Any]:
    args = typing.get_args(tp)
    inner = args[1] if args else Any
    return {str(k): coerce(f"{key}.{k}", v, inner)
            for k, v in _items(key, value, tp, dict).items()}


def _as_sequence(key: str, value: Any, tp: Any) -> list[Any] | tuple[Any, ...]:
    """``list[X]``, ``tuple[X, ...]`` or the fixed-length ``tuple[X, Y]``."""
    items = _items(key, value, tp, list)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is tuple and args and (len(args) != 2 or args[1] is not Ellipsis):
        if len(items) != len(args):
            raise _fail(key, value, tp, f" with {len(args)} items")
        kinds = list(args)
    else:
        kinds = [args[0] if args else Any] * len(items)
    out = [coerce(f"{key}[{i}]", v, a) for i, (v, a) in enumerate(zip(items, kinds))]
    return tuple(out) if origin is tuple else out


def _as_bool(key: str, value: Any, tp: Any) -> bool:
    try:
        return check_bool(key, value)
    except ValueError:
        raise _fail(key, value, tp, " (true/false, yes/no, 1/0, on/off)") from None


def _as_scalar(key: str, value: Any, tp: type) -> Any:
    """``int``, ``float`` or ``str``: never from a bool; an int from a whole float only."""
    if not isinstance(value, bool):
        if isinstance(value, tp) or (tp is float and isinstance(value, int)):
            return tp(value)
        if tp is int and isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and tp is not str:
            try:
                return tp(value.strip())
            except ValueError:
                pass
    raise _fail(key, value, tp)


def coerce(key: str, value: Any, tp: Any) -> Any:
    """Return ``value`` converted to the annotation ``tp``, or raise :class:`ConfigError`.

    Parameters
    ----------
    key : str
        Dotted key, for messages.
    value : Any
        A value from a file (already typed) or an override string.
    tp : type annotation
        The dataclass field's type.
    """
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return _as_dataclass(key, value, tp)
    if origin in (Union, types.UnionType):
        return _as_union(key, value, tp)
    if value is None:
        raise _fail(key, value, tp)
    if origin is Literal:
        return _as_literal(key, value, tp)
    if origin is dict:
        return _as_dict(key, value, tp)
    if origin in (tuple, list):
        return _as_sequence(key, value, tp)
    if tp is bool:
        return _as_bool(key, value, tp)
    if tp in (int, float, str):
        return _as_scalar(key, value, tp)
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise _fail(key, value, tp)


# ---------------------------------------------------------------------------- dataclasses
def _hints(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def _valid_keys(cls: type, prefix: str = "") -> list[str]:
    out = []
    for name, tp in _hints(cls).items():
        out.append(prefix + name)
        if dataclasses.is_dataclass(tp):
            out.extend(_valid_keys(tp, prefix + name + "."))
    return out


def _unknown(cls: type, key: str, where: str = "") -> ConfigError:
    prefix = f"{where}." if where else ""
    valid = [prefix + k for k in _valid_keys(cls)]
    near = closest(prefix + key, valid, n=3)
    hint = f" Did you mean {', '.join(repr(n) for n in near)}?" if near else ""
    return ConfigError(f"unknown config key {prefix + key!r}.{hint} "
                       f"Valid keys: {', '.join(valid)}", prefix + key)


def from_dict(cls: type[T], data: Mapping[str, Any], *, where: str = "") -> T:
    """Build the dataclass ``cls`` from a (nested) mapping; unknown keys and bad types raise.

    Parameters
    ----------
    cls : dataclass type
    data : mapping
        Field name -> value; nested dataclasses take nested mappings. Missing fields keep
        their defaults.
    where : str
        Prefix of the keys for messages (e.g. the enclosing section).

    Returns
    -------
    instance of ``cls``
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or 'config'} must be a table of keys, got "
                          f"{type(data).__name__}", where)
    hints = _hints(cls)
    kwargs = {}
    prefix = f"{where}." if where else ""
    for key, value in data.items():
        if key not in hints:
            raise _unknown(cls, str(key), where)
        kwargs[key] = coerce(prefix + key, value, hints[key])
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        if isinstance(err, ConfigError):
            raise
        prefix = f"{where}: " if where and where not in str(err) else ""
        raise ConfigError(f"{prefix}{err}", where) from None


def to_dict(cfg: Any) -> dict[str, Any]:
    """Return a JSON-ready nested dict of a config dataclass (tuples become lists)."""
    if not dataclasses.is_dataclass(cfg) or isinstance(cfg, type):
        raise TypeError(f"cfg must be a dataclass instance, got {type(cfg).__name__}")

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, Mapping):
            return {str(k): plain(x) for k, x in v.items()}
        return v

    return plain(cfg)
