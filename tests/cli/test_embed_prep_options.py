"""`embed` / `predict` with a model that records no preprocessing (a converted released
checkpoint): the options directly (`--set filter.h_freq=...`), else defaults adapted to the file."""

from __future__ import annotations

import numpy as np
import pytest

from csbrain import CSBrain, CSBrainConfig
from csbrain.cli import main
from csbrain.eval.config import split_overrides
from tests.cli.test_prepare_own_recordings import HEADSET_14
from tests.data.conftest import make_raw, write


@pytest.fixture
def bare_model(tmp_path):
    """A backbone saved without preprocessing, as `csbrain convert` writes released weights."""
    model = CSBrain(HEADSET_14, CSBrainConfig.from_preset("small"))
    model.save_pretrained(tmp_path / "bare")
    return tmp_path / "bare"


def test_split_overrides():
    assert split_overrides(["pooled=false", "windows=continuous", "filter.h_freq=40",
                            "windows.length_s=4", "reference=average", "batch_size=8"]) == (
        ["pooled=false", "windows=continuous", "batch_size=8"],
        ["filter.h_freq=40", "windows.length_s=4", "reference=average"])


def test_embed_takes_preprocessing_options_directly(bare_model, tmp_path, capsys):
    edf = write(make_raw(names=HEADSET_14, sfreq=128.0, seconds=65), tmp_path / "rec.edf")
    out = tmp_path / "e.npy"
    assert main(["embed", edf, "--model", str(bare_model), "--out", str(out),
                 "--set", "filter.h_freq=30", "--set", "windows.length_s=4",
                 "--set", "progress=false"]) == 0, capsys.readouterr().err
    assert np.load(out).shape[0] == 16  # 4-s windows of a 65-s recording
    # no option: the defaults, the low-pass adapted to 128 Hz (30-s windows)
    assert main(["embed", edf, "--model", str(bare_model), "--out", str(out),
                 "--set", "progress=false"]) == 0, capsys.readouterr().err
    assert np.load(out).shape[0] == 2


def test_no_window_says_why_and_which_option(bare_model, tmp_path, capsys):
    edf = write(make_raw(names=HEADSET_14, sfreq=128.0, seconds=20, amp_uv=300.0),
                tmp_path / "loud.edf")
    rc = main(["embed", edf, "--model", str(bare_model), "--out", str(tmp_path / "e.npy"),
               "--set", "windows.length_s=4", "--set", "progress=false"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert "no window could be embedded" in err[0] and "loud.edf: amplitude 5" in err[0]
    assert "reject.max_abs=null" in err[0]
    assert not (tmp_path / "e.npy").exists()
