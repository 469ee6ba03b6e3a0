"""``csbrain probe`` end to end on a tiny labelled store, and its one-line errors."""

from __future__ import annotations

import json

import pytest

from csbrain.cli import main
from tests.train.helpers import TINY, make_store

SET = [a for kv in TINY for a in ("--set", kv)]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("probe"))


def test_probe_a_pretrained_run_on_a_labelled_store(store, tmp_path, capsys):
    pre = tmp_path / "pre"
    assert main(["pretrain", "--data", str(store), "--out", str(pre), *SET,
                 "--set", "max_steps=2", "--set", "batch_size=4"]) == 0
    capsys.readouterr()
    out_json = tmp_path / "probe.json"
    assert main(["probe", "--model", str(pre), "--data", str(store), "--json", str(out_json),
                 "--n-random", "1", "--max-windows", "40", "--seed", "1"]) == 0
    table = capsys.readouterr().out
    assert "layer1_pooled" in table and "embedding_channels" in table and "bacc" in table
    report = json.loads(out_json.read_text())
    assert report["n_random"] == 1 and report["seed"] == 1
    assert report["n_windows"] == report["n_probe_windows"] <= 40
    assert sorted(report["features"]) == ["embedding_channels", "embedding_pooled",
                                          "layer1_channels", "layer1_pooled"]
    entry = report["features"]["layer1_pooled"]
    assert {"model", "random", "random_mean", "probe", "collapsed"} <= set(entry)
    assert 0.0 <= entry["probe"]["model"]["balanced_accuracy"] <= 1.0


@pytest.mark.parametrize("args,message", [
    (["--model", "missing-model", "--data", "STORE"], "missing-model"),
    (["--model", "MODEL", "--data", "nowhere"], "data store 'nowhere' does not exist"),
    (["--model", "MODEL", "--data", "STORE", "--n-random", "-1"], "--n-random must be >= 0"),
])
def test_probe_user_errors_are_one_line(store, tmp_path, capsys, args, message):
    args = [str(store) if a == "STORE" else str(tmp_path / "m") if a == "MODEL" else a
            for a in args]
    assert main(["probe", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("csbrain probe: error:")
    assert message in err
