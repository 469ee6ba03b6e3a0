"""CSBrainConfig: validation, presets and its (de)serialisation through csbrain.configio."""

from __future__ import annotations

import json

import numpy as np
import pytest

from csbrain import configio
from csbrain.config import CONFIG_PRESETS, CSBrainConfig


@pytest.mark.parametrize("name", list(CONFIG_PRESETS))
def test_round_trip_through_json(name):
    cfg = CSBrainConfig.from_preset(name)
    d = json.loads(json.dumps(cfg.to_dict()))
    assert d == configio.to_dict(cfg) and d["kernel_sizes"] == list(cfg.kernel_sizes)
    assert CSBrainConfig.from_dict(d) == cfg


@pytest.mark.parametrize("d, match", [
    ({"n_layer": 3}, r"unknown config key 'n_layer'\. Did you mean 'n_layers'\?"),
    ({"kernel_sizes": [1, "x"]}, r"kernel_sizes\[1\]='x' is not valid; expected int"),
    ({"dropout": "high"}, r"dropout='high' is not valid; expected float"),
    ({"temporal_mode": "papr"}, r"temporal_mode='papr' is not allowed.*Did you mean 'paper'"),
    ({"pos_kernel": [19, 7, 3]}, r"pos_kernel=\[19, 7, 3\] is not valid; expected a list of "
                                 r"int with 2 items"),
    ({"n_heads": 7}, r"n_heads=7 must divide d_model=200"),
])
def test_from_dict_names_key_value_and_what_is_allowed(d, match):
    with pytest.raises(configio.ConfigError, match=match):
        CSBrainConfig.from_dict(d)


@pytest.mark.parametrize("kwargs, match", [
    (dict(kernel_sizes=(1, 3.5, 5)), r"kernel_sizes\[1\] must be an integer, got 3.5"),
    (dict(pos_kernel=(19.7, 7)), r"pos_kernel\[0\] must be an integer, got 19.7"),
    (dict(pos_kernel=(True, 7)), r"pos_kernel\[0\] must be an integer, got True"),
    (dict(kernel_sizes="135"), r"kernel_sizes='135' must be a sequence of integers"),
])
def test_kernel_sizes_are_integers_not_truncated(kwargs, match):
    with pytest.raises(TypeError, match=match):
        CSBrainConfig(**kwargs)


def test_kernel_sizes_accept_any_integer_sequence():
    cfg = CSBrainConfig(kernel_sizes=np.array([1, 3, 5]), pos_kernel=[19, 7])
    assert cfg.kernel_sizes == (1, 3, 5) and cfg.pos_kernel == (19, 7)
    assert all(type(k) is int for k in cfg.kernel_sizes + cfg.pos_kernel)
