"""Config files and ``key=value`` overrides over :mod:`csbrain.configio.values`.

:func:`load_config` merges defaults, a TOML / YAML / JSON file and overrides (dotted keys reach
nested fields) into one tree, then builds the dataclass with
:func:`~csbrain.configio.values.from_dict`. :func:`save_json` and :func:`config_diff` work on
:func:`~csbrain.configio.values.to_dict` trees.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, Union

from csbrain._io import atomic_write_text
from csbrain.configio.values import ConfigError, _hints, _unknown, from_dict, to_dict

T = TypeVar("T")

__all__ = ["load_config", "apply_overrides", "parse_overrides", "read_config_file",
           "save_json", "config_diff"]


def parse_overrides(items: Sequence[str]) -> dict[str, str]:
    """Parse ``["a.b=1", "c=x,y"]`` into ``{"a.b": "1", "c": "x,y"}`` (later wins)."""
    if isinstance(items, str):
        raise ConfigError(f"overrides={items!r} is one string; expected a list of key=value "
                          f"strings (e.g. [{items!r}])")
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
