"""`csbrain prepare` and `csbrain datasets`: thin CLI, summary, one-line errors."""

from __future__ import annotations

import json

import pytest

from csbrain.cli import main
from csbrain.data.store import open_store
from tests.data.conftest import make_raw, write


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    write(make_raw(seed=0, seconds=25), d / "a.edf")
    write(make_raw(seed=1, seconds=25), d / "b.vhdr")
    (d / "c.edf").write_bytes(b"broken" * 50)
    return d


def test_prepare_folder_with_config_and_sets(folder, tmp_path, capsys):
    cfg = tmp_path / "prep.toml"
    cfg.write_text('[windows]\nlength_s = 5\n[filter]\nnotch = [50.0]\n')
    out = tmp_path / "store"
    rc = main(["prepare", str(folder), "--out", str(out), "--config", str(cfg),
               "--set", "filter.h_freq=40", "--set", "reject.max_abs=null"])
    text = capsys.readouterr().out
    assert rc == 0
    assert f"store {out}: 2 recordings, 10 windows" in text
    assert "3 sources: 2 prepared, 0 already in the store, 1 skipped" in text
    assert "skipped c [unreadable]: cannot read" in text
    config = open_store(out).config
    assert config["filter"] == {"l_freq": 0.3, "h_freq": 40.0, "notch": [50.0], "method": "fir"}
    m = json.loads((out / "manifest.json").read_text())
    assert [r["id"] for r in m["recordings"]] == ["a", "b"]
    assert main(["prepare", str(folder), "--out", str(out), "--config", str(cfg),
                 "--set", "filter.h_freq=40", "--set", "reject.max_abs=null"]) == 0
    assert "0 prepared, 2 already in the store" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--set", "filter.lfreq=1"], "error: unknown config key 'filter.lfreq'. Did you mean "
                                  "'filter.l_freq'"),
    (["--set", "windows.length_s=abc"],
     "error: windows.length_s='abc' is not valid; expected float"),
    (["--set", "filter.h_freq=150"], "error: filter.h_freq must be < 100.0, got 150.0"),
    (["--config", "missing.toml"], "error: config file 'missing.toml' does not exist"),
])
def test_config_errors_exit_2_with_one_line(folder, tmp_path, capsys, args, message):
    rc = main(["prepare", str(folder), "--out", str(tmp_path / "s"), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert err[0].startswith("csbrain prepare: ") and message in err[0]
    assert not (tmp_path / "s").exists()


def test_store_errors_and_all_skipped(folder, tmp_path, capsys):
    out = str(tmp_path / "s")
    assert main(["prepare", str(folder / "a.edf"), "--out", out,
                 "--set", "windows.length_s=5"]) == 0
    capsys.readouterr()
    rc = main(["prepare", str(folder / "a.edf"), "--out", out, "--set", "windows.length_s=10"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert "different preprocessing parameters (windows.length_s: 5.0 != 10.0)" in err[-1]
    rc = main(["prepare", str(folder / "c.edf"), "--out", str(tmp_path / "s2")])
    assert rc == 1 and "no window could be prepared" in capsys.readouterr().err
    rc = main(["prepare", str(tmp_path / "nope.edf"), "--out", str(tmp_path / "s3")])
    assert rc == 2 and "does not exist" in capsys.readouterr().err


def test_datasets_lists_named_datasets(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("CSBRAIN_DATA", str(tmp_path))
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("face13", "eyes-closed-open", "finger-movements", "nap"):
        assert name in out
    assert f"cache: {tmp_path}" in out and " no " in out
