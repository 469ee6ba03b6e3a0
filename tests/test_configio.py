"""The generic typed-config mechanism (csbrain.configio)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

import pytest

from csbrain.configio import (
    ConfigError,
    apply_overrides,
    config_diff,
    from_dict,
    load_config,
    parse_overrides,
    save_json,
    to_dict,
)


@dataclass(frozen=True)
class Filter:
    l_freq: float | None = 0.3
    h_freq: float | None = 75.0
    notch: tuple[float, ...] = ()


@dataclass(frozen=True)
class Cfg:
    name: str = "x"
    epochs: int = 10
    lr: float = 1e-3
    amp: bool = True
    mode: Literal["a", "b"] = "a"
    channels: tuple[str, ...] = ("Fz", "Cz")
    ids: list[int] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)
    seed: int | None = None
    filter: Filter = field(default_factory=Filter)

    def __post_init__(self):
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")


def test_overrides_parse_by_type():
    cfg = load_config(Cfg, None, ["epochs=5", "lr=1e-4", "amp=False", "mode=b", "channels=Fp1,Fp2",
                                  "ids=[1, 2]", "labels=face:0,house:1", "seed=none",
                                  "filter.l_freq=0.5", "filter.notch=50,60", "filter.h_freq=null"])
    assert cfg.epochs == 5 and cfg.lr == 1e-4 and cfg.amp is False and cfg.mode == "b"
    assert cfg.channels == ("Fp1", "Fp2") and cfg.ids == [1, 2]
    assert cfg.labels == {"face": 0, "house": 1} and cfg.seed is None
    assert cfg.filter == Filter(0.5, None, (50.0, 60.0))
    assert load_config(Cfg, None, ["amp=yes", "labels={\"a\": 3}"]).labels == {"a": 3}
    assert load_config(Cfg, None, ["labels.face-up=2"]).labels == {"face-up": 2}
    assert load_config(Cfg, None, ["channels="]).channels == ()


@pytest.mark.parametrize("suffix", [".toml", ".yaml", ".json"])
def test_files_and_precedence(tmp_path, suffix):
    path = tmp_path / f"c{suffix}"
    data = {"epochs": 7, "channels": ["O1"], "filter": {"l_freq": 1.0}}
    if suffix == ".toml":
        path.write_text('epochs = 7\nchannels = ["O1"]\n[filter]\nl_freq = 1.0\n')
    elif suffix == ".yaml":
        path.write_text("epochs: 7\nchannels: [O1]\nfilter:\n  l_freq: 1.0\n")
    else:
        path.write_text(json.dumps(data))
    cfg = load_config(Cfg, path, ["epochs=8"], defaults={"lr": 0.5, "filter.h_freq": 40})
    assert (cfg.epochs, cfg.channels, cfg.lr) == (8, ("O1",), 0.5)
    assert cfg.filter == Filter(1.0, 40.0, ())


def test_unknown_keys_suggest_closest():
    with pytest.raises(ConfigError, match=r"unknown config key 'filter.lfreq'.*'filter.l_freq'"):
        load_config(Cfg, None, ["filter.lfreq=1"])
    with pytest.raises(ConfigError, match=r"unknown config key 'epoch'.*'epochs'"):
        from_dict(Cfg, {"epoch": 3})
    with pytest.raises(ConfigError, match=r"'filter.hfreq'.*'filter.h_freq'"):
        from_dict(Cfg, {"filter": {"hfreq": 3}})


@pytest.mark.parametrize("item, match", [
    ("epochs=ten", r"epochs='ten' is not valid; expected int"),
    ("epochs=1.5", r"epochs='1.5' is not valid; expected int"),
    ("amp=maybe", r"amp='maybe' is not valid; expected bool"),
    ("mode=c", r"mode='c' is not allowed; expected one of \['a', 'b'\]"),
    ("filter.l_freq=low", r"filter.l_freq='low' is not valid; expected float or null"),
    ("ids=[1, \"x\"]", r"ids\[1\]='x' is not valid; expected int"),
    ("labels=face", r"labels='face' is not valid; expected a mapping of str to int"),
    ("epochs", r"is not key=value"),
    ("epochs=0", r"epochs must be >= 1, got 0"),
])
def test_wrong_types_name_key_value_and_type(item, match):
    with pytest.raises(ConfigError, match=match):
        load_config(Cfg, None, [item])


def test_file_type_errors(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('epochs = "many"\n')
    with pytest.raises(ConfigError, match="epochs='many' is not valid; expected int"):
        load_config(Cfg, p)
    p.write_text("epochs = [\n")
    with pytest.raises(ConfigError, match="cannot be parsed"):
        load_config(Cfg, p)
    with pytest.raises(ConfigError, match="expected .toml, .yaml, .yml or .json"):
        (tmp_path / "c.ini").write_text("")
        load_config(Cfg, tmp_path / "c.ini")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_config(Cfg, tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match=r"amp=2 is not valid"):
        from_dict(Cfg, {"amp": 2})


def test_roundtrip_save_json_and_diff(tmp_path):
    cfg = load_config(Cfg, None, ["channels=A,B", "filter.notch=50"])
    save_json(cfg, tmp_path / "out" / "c.json")
    assert not list((tmp_path / "out").glob("*.tmp"))
    back = load_config(Cfg, tmp_path / "out" / "c.json")
    assert back == cfg
    assert to_dict(cfg)["channels"] == ["A", "B"]
    assert apply_overrides(cfg, ["epochs=3"]).epochs == 3 and cfg.epochs == 10
    assert config_diff(cfg, apply_overrides(cfg, {"filter.l_freq": 1.0})) == [
        "filter.l_freq: 0.3 != 1.0"]
    assert parse_overrides(["a=b=c"]) == {"a": "b=c"}


@dataclass(frozen=True)
class Optional_:
    kernels: tuple[int, ...] | None = None
    filter: Filter | None = None


def test_an_error_inside_an_optional_value_names_the_item():
    with pytest.raises(ConfigError, match=r"kernels\[1\]='x' is not valid; expected int"):
        load_config(Optional_, None, ["kernels=1,x"])
    with pytest.raises(ConfigError, match=r"unknown config key 'filter.lfreq'.*'filter.l_freq'"):
        from_dict(Optional_, {"filter": {"lfreq": 1}})
    with pytest.raises(ConfigError, match=r"kernels=3 is not valid; expected a list of int or "
                                          r"null"):
        from_dict(Optional_, {"kernels": 3})
    assert load_config(Optional_, None, ["kernels=null"]).kernels is None
    assert from_dict(Optional_, {"filter": {"notch": [50]}}).filter == Filter(notch=(50.0,))


def test_errors_are_user_errors_that_name_their_key():
    from csbrain._checks import CSBrainError

    with pytest.raises(CSBrainError) as info:
        load_config(Cfg, None, ["filter.l_freq=low"])
    assert isinstance(info.value, ConfigError) and info.value.key == "filter.l_freq"


def test_one_string_of_overrides_is_refused_clearly():
    with pytest.raises(ConfigError, match=r"overrides='epochs=3' is one string; expected a list "
                                          r"of key=value strings \(e.g. \['epochs=3'\]\)"):
        load_config(Cfg, None, "epochs=3")
