"""``csbrain benchmark list`` and its one-line errors."""

from __future__ import annotations

import json

from csbrain.cli import main


def test_list_shows_sixteen_datasets_and_stores(tmp_path, capsys):
    (tmp_path / "hmc").mkdir()
    (tmp_path / "hmc" / "benchmark.json").write_text(json.dumps(
        {"n_windows": {"train": 5, "val": 2, "test": 3}}))
    assert main(["benchmark", "list", "--stores", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = [ln for ln in out.splitlines() if ln and not ln.startswith(" ")][1:]
    assert len(rows) == 16
    assert "yes (5/2/3 windows train/val/test)" in out and "balanced_accuracy" in out


def test_unknown_dataset_is_one_line(tmp_path, capsys):
    assert main(["benchmark", "prepare", "nope", "--raw", str(tmp_path), "--out",
                 str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown benchmark dataset 'nope'" in err
