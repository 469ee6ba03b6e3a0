"""Preprocessing maths against MNE/scipy references, and channel picking through the montage."""

from __future__ import annotations

import numpy as np
import pytest

from csbrain import units
from csbrain.configio import load_config
from csbrain.data.prepconfig import ChannelConfig, FilterConfig, PrepConfig
from csbrain.data.preprocess import (
    PRETRAINING_1020,
    RecordingError,
    adapt_filter,
    check_filter_rate,
    filter_array,
    nearest_1020,
    pick_channels,
    resample_array,
    select_channels,
    set_reference,
)
from csbrain.data.windows import preprocess_raw
from tests.data.conftest import make_raw


def cfg_of(*items: str) -> PrepConfig:
    return load_config(PrepConfig, None, list(items))


def test_filter_and_resample_equal_mne():
    import mne

    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 2500))
    f = FilterConfig(l_freq=0.5, h_freq=40.0, notch=(50.0,))
    ref = mne.filter.filter_data(x, 250.0, 0.5, 40.0, verbose="error")
    ref = mne.filter.notch_filter(ref, 250.0, [50.0], verbose="error")
    np.testing.assert_allclose(filter_array(x, 250.0, f), ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(resample_array(x, 250.0),
                               mne.filter.resample(x, up=200 / 250, verbose="error"), atol=1e-12)
    # analytic reference: a 7 Hz sine resampled 250 -> 200 Hz is the sine at the new times
    t_in = np.arange(2500) / 250.0
    t_out = np.arange(2000) / units.SFREQ
    got = resample_array(np.sin(2 * np.pi * 7 * t_in)[None], 250.0)[0]
    np.testing.assert_allclose(got[100:-100], np.sin(2 * np.pi * 7 * t_out)[100:-100], atol=2e-3)


def test_preprocess_raw_equals_mne_pipeline():
    raw = make_raw(seconds=30, amp_uv=20)
    cfg = cfg_of("windows.length_s=5", "windows.stride_s=2.5", "filter.l_freq=1",
                 "filter.h_freq=40", "filter.notch=50", "reject.max_abs=null", "reference=average")
    w = preprocess_raw(raw, cfg)
    ref = raw.copy().set_eeg_reference("average", verbose="error")
    ref = ref.filter(1.0, 40.0, verbose="error").notch_filter([50.0], verbose="error")
    ref = ref.resample(200.0, verbose="error").get_data() * 1e4  # volts -> 100 µV
    starts = np.arange(0, 6000 - 1000 + 1, 500)
    assert w.x.shape == (len(starts), 19, 5, 200) and w.x.dtype == np.float32
    np.testing.assert_array_equal(w.start, starts)
    expect = np.stack([ref[:, s:s + 1000] for s in starts]).reshape(len(starts), 19, 5, 200)
    np.testing.assert_allclose(w.x, expect, rtol=1e-5, atol=1e-6)
    assert (w.y == -1).all() and w.n_candidates == len(starts)


def test_channels_aliases_order_and_montage():
    raw = make_raw(names=["EEG FP1-REF", "EEG T3-REF", "EEG CZ-REF", "ECG"], seconds=5)
    raw.set_channel_types({"ECG": "ecg"})
    out, montage, src = pick_channels(raw, ChannelConfig(pick=("cz", "T7", "Fp1")))
    assert out.ch_names == ["Cz", "T7", "Fp1"]
    assert src == ["EEG CZ-REF", "EEG T3-REF", "EEG FP1-REF"]
    assert montage.canonical == ("Cz", "T7", "Fp1") and montage.regions == (4, 2, 0)
    np.testing.assert_array_equal(out.get_data()[1], raw.get_data()[1])
    out, montage, _ = pick_channels(raw, ChannelConfig())
    assert montage.canonical == ("Fp1", "T7", "Cz")  # types=eeg drops ECG
    assert pick_channels(raw, ChannelConfig(exclude=("T3",)))[1].canonical == ("Fp1", "Cz")


@pytest.mark.parametrize("cfg, reason, match", [
    (ChannelConfig(pick=("O1", "O2")), "no_channels", "none of the requested channels"),
    (ChannelConfig(pick=("Cz", "O2")), "missing_channels",
     r"requested channels \['O2'\] are missing"),
    (ChannelConfig(types=("eog",)), "no_channels", "no channel of types"),
])
def test_channel_errors(cfg, reason, match):
    raw = make_raw(names=["Fp1", "Cz"], seconds=2)
    with pytest.raises(RecordingError, match=match) as info:
        pick_channels(raw, cfg)
    assert info.value.reason == reason


def test_unknown_channel_names():
    with pytest.raises(RecordingError, match=r"'Xq7' is not a 10-05 electrode name") as info:
        select_channels(["Cz", "Xq7"], ["eeg", "eeg"], ChannelConfig())
    assert info.value.reason == "unknown_channels"
    with pytest.raises(ValueError, match="not a 10-05 electrode name"):
        select_channels(["Cz"], ["eeg"], ChannelConfig(pick=("Qq",)))


def test_positions_match_and_nearest_1020():
    import mne

    names = mne.channels.make_standard_montage("biosemi128").ch_names
    raw = make_raw(names=names, seconds=2)
    out, montage, _ = pick_channels(raw, ChannelConfig(positions="biosemi128", match="positions"))
    assert montage.n_chans == 128 and montage.canonical[0] == "A1@biosemi128"
    assert set(montage.regions) == {0, 1, 2, 3, 4}
    assert montage.regions[0] == 4  # BioSemi A1 is the vertex (central), not the ear A1
    cfg = ChannelConfig(positions="biosemi128", nearest_1020=True)
    out, montage, src = pick_channels(raw, cfg)
    assert montage.canonical == PRETRAINING_1020 and len(set(src)) == 19
    assert montage.regions == (0, 0, 0, 0, 4, 4, 1, 1, 3, 3, 0, 0, 2, 2, 2, 2, 0, 4, 1)
    assert src[PRETRAINING_1020.index("Cz")] == "A1"
    with pytest.raises(RecordingError, match="at least 19 channels"):
        nearest_1020({"a": np.ones(3)})


def test_reference_and_filter_rate():
    raw = make_raw(names=["Fp1", "Cz", "O1"], seconds=2)
    out = set_reference(raw, ["Cz"])
    np.testing.assert_allclose(out.get_data()[1], 0, atol=1e-20)
    with pytest.raises(RecordingError, match=r"reference channels \['M1'\]"):
        set_reference(raw, ["M1"])
    with pytest.raises(RecordingError, match=r"filter.h_freq=75 Hz is at or above the Nyquist "
                                             r"frequency 50 Hz") as info:
        check_filter_rate(100.0, FilterConfig())
    assert info.value.reason == "sfreq_too_low"
    # the filters adapt to the recording's rate: low-pass at 0.9 x Nyquist, notch dropped
    cfg, notes = adapt_filter(128.0, FilterConfig(notch=(50.0, 60.0, 100.0)))
    assert cfg.h_freq == 57.6 and cfg.notch == (50.0, 60.0) and cfg.l_freq == 0.3
    assert notes == ["filter.h_freq 75 Hz -> 57.6 Hz (0.9 x Nyquist 64 Hz)",
                     "filter.notch 100 Hz dropped (at or above Nyquist 64 Hz)"]
    assert adapt_filter(250.0, FilterConfig()) == (FilterConfig(), [])
    with pytest.raises(RecordingError, match="filter.l_freq=50 Hz is not below the low-pass 45"):
        adapt_filter(100.0, FilterConfig(l_freq=50.0, h_freq=75.0))
    with pytest.raises(ValueError, match=r"filter.h_freq must be < 100"):
        FilterConfig(h_freq=120.0)
