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

Two modules: :mod:`~csbrain.configio.values` (:func:`coerce`, one small function per kind of
annotation; :func:`from_dict`, :func:`to_dict`) and :mod:`~csbrain.configio.files` (files,
overrides, :func:`load_config`, :func:`save_json`, :func:`config_diff`).
"""

from __future__ import annotations

from csbrain.configio.files import (
                                    apply_overrides,
                                    config_diff,
                                    load_config,
                                    parse_overrides,
                                    read_config_file,
                                    save_json,
)
from csbrain.configio.values import ConfigError, coerce, from_dict, to_dict

__all__ = ["ConfigError", "load_config", "from_dict", "apply_overrides", "parse_overrides",
           "read_config_file", "to_dict", "save_json", "config_diff", "coerce"]
