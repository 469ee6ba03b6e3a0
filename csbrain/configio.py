"""Typed configuration files: one mechanism for every config dataclass of csbrain.

A config is a (possibly nested) :func:`dataclasses.dataclass`. :func:`load_config` builds one
from defaults, then a TOML / YAML / JSON file, then ``key=value`` overrides (later wins):

>>> cfg = load_config(PrepConfig, "prep.toml", ["filter.l_freq=0.5", "notch=50,60"])

Values are parsed by the field's type annotation: ``int``, ``float``, ``str``, ``bool``
(``"False"`` is False: :func:`csbrain._checks.check_bool`), ``Literal[...]``, ``X | None``
(``none``/``null`` give None), ``tuple``/``list`` of those (``a,b,c`` or JSON ``[..]``),
``dict[str, X]`` (JSON ``{..}`` or ``a:1,b:2``; ``section.field.key=value`` sets one entry)
and nested dataclasses (dotted keys). Unknown keys are rejected with the closest valid keys;
wrong types are rejected naming the key, the value and the expected type.
:func:`to_dict` / :func:`save_json` write the config back (JSON, atomically).
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

from csbrain._checks import check_bool, closest
from csbrain._io import atomic_write_text

T = TypeVar("T")

__all__ = ["ConfigError", "load_config", "from_dict", "apply_overrides", "parse_overrides",
           "read_config_file", "to_dict", "save_json", "config_diff"]


class ConfigError(ValueError):
    """A configuration value, key or file is invalid (the message says which and why)."""


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
    return ConfigError(f"{key}={value!r} is not valid; expected {_type_name(tp)}{extra}")


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
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        nullable = type(None) in args
        if nullable and (value is None or (isinstance(value, str)
                                           and value.strip().lower() in ("none", "null"))):
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return coerce(key, value, arg)
            except ConfigError:
                continue
        raise _fail(key, value, tp)
    if value is None:
        raise _fail(key, value, tp)
    if origin is Literal:
        allowed = typing.get_args(tp)
        for a in allowed:
            if value == a or (isinstance(value, str) and str(a) == value):
                return a
        near = closest(str(value), [str(a) for a in allowed], n=3) if isinstance(value, str) else []
        hint = f" Did you mean {', '.join(repr(n) for n in near)}?" if near else ""
        raise ConfigError(f"{key}={value!r} is not allowed; expected one of {list(allowed)}.{hint}")
    args = typing.get_args(tp)
    if origin in (tuple, list, dict):
        items = value
        if isinstance(value, str):
            try:
                items = (_split_dict if origin is dict else _split_list)(value)
            except ValueError as err:
                raise _fail(key, value, tp, f" ({err})") from None
        if not isinstance(items, Mapping if origin is dict else (list, tuple)):
            raise _fail(key, value, tp)
    if origin is dict:
        inner = args[1] if args else Any
        return {str(k): coerce(f"{key}.{k}", v, inner) for k, v in items.items()}
    if origin in (tuple, list):
        if origin is tuple and args and (len(args) != 2 or args[1] is not Ellipsis):
            if len(items) != len(args):
                raise _fail(key, value, tp, f" with {len(args)} items")
            out = [coerce(f"{key}[{i}]", v, a) for i, (v, a) in enumerate(zip(items, args))]
        else:
            inner = args[0] if args else Any
            out = [coerce(f"{key}[{i}]", v, inner) for i, v in enumerate(items)]
        return tuple(out) if origin is tuple else out
    if tp is bool:
        try:
            return check_bool(key, value)
        except ValueError:
            raise _fail(key, value, tp, " (true/false, yes/no, 1/0, on/off)") from None
    if tp in (int, float, str) and not isinstance(value, bool):
        if isinstance(value, tp) or (tp is float and isinstance(value, int)):
            return tp(value)
        if tp is int and isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and tp is not str:
            try:
                return tp(value.strip())
            except ValueError:
                pass
    elif isinstance(tp, type) and tp not in (int, float, str) and isinstance(value, tp):
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
                       f"Valid keys: {', '.join(valid)}")


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
        raise ConfigError(f"{where or 'config'} must be a table of keys, got {type(data).__name__}")
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
        raise ConfigError(f"{prefix}{err}") from None


def parse_overrides(items: Sequence[str]) -> dict[str, str]:
    """Parse ``["a.b=1", "c=x,y"]`` into ``{"a.b": "1", "c": "x,y"}`` (later wins)."""
    out: dict[str, str] = {}
    for item in items:
        if not isinstance(item, str) or "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value (e.g. filter.l_freq=0.5)")
        key, value = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"override {item!r} has an empty key; expected key=value")
        out[key] = value
    return out


def _set_dotted(cls: type, tree: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node_cls: Any = cls
    node = tree
    for i, part in enumerate(parts):
        hints = _hints(node_cls)
        if part not in hints:
            raise _unknown(cls, key)
        tp = hints[part]
        last = i == len(parts) - 1
        if last:
            node[part] = value
            return
        if dataclasses.is_dataclass(tp):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{'.'.join(parts[:i + 1])} is set as a whole and by field")
            node_cls = tp
            continue
        if typing.get_origin(tp) is dict or typing.get_origin(_strip_none(tp)) is dict:
            current = node.get(part)
            sub = dict(current) if isinstance(current, Mapping) else {}
            sub[".".join(parts[i + 1:])] = value
            node[part] = sub
            return
        raise _unknown(cls, key, "")


def _strip_none(tp: Any) -> Any:
    if typing.get_origin(tp) in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _merge(cls: type, base: dict, update: Mapping[str, Any]) -> dict:
    """Deep-merge a nested mapping (or dotted keys) into ``base`` following ``cls``'s fields."""
    out = json.loads(json.dumps(base, default=list))
    for key, value in update.items():
        hints = _hints(cls)
        if "." in key:
            _set_dotted(cls, out, key, value)
        elif key in hints and dataclasses.is_dataclass(hints[key]) and isinstance(value, Mapping):
            sub = out.get(key) if isinstance(out.get(key), dict) else {}
            out[key] = _merge(hints[key], sub, value)
        elif key not in hints:
            raise _unknown(cls, key)
        else:
            out[key] = value
    return out


def apply_overrides(cfg: T, overrides: Sequence[str] | Mapping[str, Any]) -> T:
    """Return a copy of ``cfg`` with ``key=value`` strings (or a dotted-key mapping) applied."""
    items = parse_overrides(overrides) if not isinstance(overrides, Mapping) else dict(overrides)
    cls = type(cfg)
    return from_dict(cls, _merge(cls, to_dict(cfg), items))


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a TOML (``.toml``), YAML (``.yaml``/``.yml``) or JSON (``.json``) file into a dict."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8")
    try:
        if suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise ConfigError(f"config file {str(path)!r} has suffix {suffix!r}; expected .toml, "
                              f".yaml, .yml or .json")
    except ConfigError:
        raise
    except Exception as err:  # parser errors of three libraries
        raise ConfigError(f"config file {str(path)!r} cannot be parsed: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a table of keys, "
                          f"got {type(data).__name__}")
    return data


def load_config(cls: type[T], path: str | os.PathLike | None = None,
                overrides: Sequence[str] | Mapping[str, Any] = (), *,
                defaults: Mapping[str, Any] | None = None) -> T:
    """Build ``cls`` from its defaults, then ``defaults``, then the file, then ``overrides``.

    Parameters
    ----------
    cls : dataclass type
    path : path-like | None
        TOML, YAML or JSON file (nested tables or dotted keys).
    overrides : sequence of ``"key=value"`` str, or mapping
        Applied last; dotted keys reach nested fields.
    defaults : mapping | None
        Applied first (e.g. the defaults of a named dataset); nested or dotted keys.

    Returns
    -------
    instance of ``cls``
    """
    tree = to_dict(cls())
    if defaults:
        tree = _merge(cls, tree, defaults)
    if path is not None:
        tree = _merge(cls, tree, read_config_file(path))
    items = parse_overrides(overrides) if not isinstance(overrides, Mapping) else dict(overrides)
    tree = _merge(cls, tree, items)
    return from_dict(cls, tree)


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


def save_json(cfg: Any, path: str | os.PathLike) -> None:
    """Save a config dataclass (or a plain dict) as indented JSON, atomically."""
    data = cfg if isinstance(cfg, Mapping) else to_dict(cfg)
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_diff(a: Mapping[str, Any] | Any, b: Mapping[str, Any] | Any) -> list[str]:
    """List ``"key: a_value != b_value"`` for every dotted key where two configs differ."""
    fa = _flatten(a if isinstance(a, Mapping) else to_dict(a))
    fb = _flatten(b if isinstance(b, Mapping) else to_dict(b))
    return [f"{k}: {fa.get(k, '<absent>')!r} != {fb.get(k, '<absent>')!r}"
            for k in sorted(set(fa) | set(fb)) if fa.get(k, "<absent>") != fb.get(k, "<absent>")]
