"""``csbrain info`` and ``csbrain convert`` on the golden released-layout checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from csbrain import CSBrainForPretraining
from csbrain.cli import main


def test_info_on_released_checkpoint(golden, capsys):
    assert main(["info", str(golden / "csbrain_official_2layer.pth"), "--preset", "TUEG"]) == 0
    out = capsys.readouterr().out
    assert "CSBrainForPretraining" in out and "n_layers=2" in out
    assert "temporal  T3 T5 T6 T4" in out  # released within-region order
    pth = str(golden / "csbrain_official_2layer.pth")
    assert main(["info", pth, "--channels", "C3,Cz,C4"]) == 0
    assert "montage: 3 channels\n" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main(["info", pth, "--preset", "TUEG", "--channels", "C3"])
    assert exit_.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_convert_then_info_then_same_outputs(golden, tmp_path, capsys):
    src = golden / "csbrain_official_2layer.pth"
    assert main(["convert", str(src), str(tmp_path / "conv"), "--preset", "SEED-VIG"]) == 0
    assert main(["info", str(tmp_path / "conv"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert info["montage"]["preset"] == "SEED-VIG" and info["parameters"] > 0
    ref = np.load(golden / "SEED-VIG.npz")
    model = CSBrainForPretraining.from_pretrained(tmp_path / "conv")
    with torch.no_grad():
        got = model(torch.from_numpy(ref["x"]), torch.from_numpy(ref["mask"])).numpy()
    assert np.abs(got - ref["reconstruction_masked"]).max() < 1e-4


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["info", str(tmp_path / "missing.pth")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0]
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    assert main(["convert", "nothing.pth", str(tmp_path / "full")]) == 2
    assert "exists and is not empty" in capsys.readouterr().err


def test_python_dash_m_runs_the_cli(golden):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "csbrain", "info",
                           str(golden / "csbrain_official_2layer.pth"), "--preset", "TUEG"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "CSBrainForPretraining" in proc.stdout
