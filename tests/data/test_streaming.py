"""Chunked preparation equals whole-file preparation (filters, resampling, windows, rejection)."""

from __future__ import annotations

import dataclasses

import mne
import numpy as np
import pytest

from csbrain.data.prepconfig import PrepConfig
from csbrain.data.readers import read_raw
from csbrain.data.streaming import NotStreamable, open_stream, stream_windows
from csbrain.data.windows import preprocess_raw

CH = ["Fp1", "Fp2", "C3", "C4", "O1", "O2"]


def _fif(tmp_path, sfreq=256.0, seconds=150.0, ann=True):
    rng = np.random.default_rng(0)
    n = int(sfreq * seconds)
    # 1/f-like signal plus alpha, tens of microvolts
    x = np.cumsum(rng.standard_normal((len(CH), n)), axis=1) * 1e-6
    x -= x.mean(axis=1, keepdims=True)
    x += 20e-6 * np.sin(2 * np.pi * 10 * np.arange(n) / sfreq)
    raw = mne.io.RawArray(x, mne.create_info(CH, sfreq, "eeg"), verbose="error")
    if ann:  # one bad span across the 30-s chunk edge, one inside a chunk
        raw.set_annotations(mne.Annotations([27.3, 71.0], [5.1, 0.4], ["BAD_move", "bad_x"]))
    path = tmp_path / "rec_raw.fif"
    raw.save(path, verbose="error")
    return path


def _whole(path, cfg):
    return preprocess_raw(read_raw(path), cfg, resample_method="polyphase")


def _streamed(path, cfg, chunk_s):
    info = open_stream(path, cfg)
    parts = list(stream_windows(info, cfg, chunk_s=chunk_s))
    rejected = {k: sum(p.rejected[k] for p in parts) for k in parts[0].rejected}
    return (np.concatenate([p.x for p in parts]), np.concatenate([p.start for p in parts]),
            rejected)


@pytest.mark.parametrize("chunk_s", [13.7, 30.0, 61.0])
def test_chunks_equal_whole_file(tmp_path, chunk_s):
    cfg = PrepConfig()
    cfg = dataclasses.replace(cfg, windows=dataclasses.replace(cfg.windows, length_s=4,
                                                               stride_s=3))
    path = _fif(tmp_path)
    w = _whole(path, cfg)
    x, start, rejected = _streamed(path, cfg, chunk_s)
    assert w.rejected["bad_annotation"] > 0  # the annotations did reject windows
    assert rejected == w.rejected
    np.testing.assert_array_equal(start, w.start)
    assert np.abs(x - w.x).max() < 1e-5


def test_iir_and_notch_at_250_hz(tmp_path):
    cfg = PrepConfig()
    cfg = dataclasses.replace(cfg, filter=dataclasses.replace(cfg.filter, method="iir",
                                                              notch=(50.0,)))
    path = _fif(tmp_path, sfreq=250.0, seconds=120.0, ann=False)
    w = _whole(path, cfg)
    x, start, _ = _streamed(path, cfg, 25.0)
    np.testing.assert_array_equal(start, w.start)
    assert np.abs(x - w.x).max() < 1e-5


def test_reference_needs_whole_file(tmp_path):
    cfg = dataclasses.replace(PrepConfig(), reference=("average",))
    with pytest.raises(NotStreamable, match="re-reference"):
        open_stream(_fif(tmp_path, seconds=20, ann=False), cfg)
