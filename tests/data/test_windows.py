"""Windowing, event epoching, trials and rejection counts (every window is counted once)."""

from __future__ import annotations

import numpy as np
import pytest

from csbrain.configio import load_config
from csbrain.data.labels import recording_label
from csbrain.data.prepconfig import PrepConfig, RejectConfig, WindowConfig
from csbrain.data.preprocess import RecordingError
from csbrain.data.readers import Trials
from csbrain.data.windows import (
    cut_windows,
    preprocess_raw,
    preprocess_trials,
    reject_windows,
    window_starts,
)
from tests.data.conftest import make_raw

NOFILTER = ["filter.l_freq=null", "filter.h_freq=null"]


def cfg_of(*items: str) -> PrepConfig:
    return load_config(PrepConfig, None, list(items))


def test_window_starts_and_cut():
    cfg = WindowConfig(length_s=2, stride_s=1.5, crop_start_s=1)
    np.testing.assert_array_equal(window_starts(2000, cfg), [200, 500, 800, 1100, 1400])
    x = np.arange(2 * 10).reshape(2, 10)
    np.testing.assert_array_equal(cut_windows(x, np.array([0, 3]), 4)[1], x[:, 3:7])
    with pytest.raises(RecordingError, match=r"shorter than one window of windows.length_s=2 s"):
        window_starts(399, WindowConfig(length_s=2))
    with pytest.raises(ValueError, match="not a whole number of 1-s patches"):
        WindowConfig(length_s=1.5)


def test_reject_counts_each_window_once():
    w = np.zeros((6, 2, 200), np.float32) + np.sin(np.arange(200))[None, None] * 0.1
    w[1, 0, 5] = np.nan                 # nan
    w[1, 1, 9] = 2.0                    # ... and beyond 100 µV: counted once, as nan
    w[2, 1] = 0.0                       # flat channel
    w[3, 0, 7] = 1.0                    # reaches 100 µV
    w[4, 0, 7] = np.inf                 # nan (first reason) though also amplitude
    bad = np.array([0, 0, 0, 0, 0, 1], bool)
    each = {}
    keep, counts = reject_windows(w, RejectConfig(), bad=bad, each=each)
    assert keep.tolist() == [True, False, False, False, False, False]
    assert counts == {"out_of_bounds": 0, "nan": 2, "bad_annotation": 1, "flat": 1, "amplitude": 1}
    # each rule on its own: window 1 also reaches the amplitude bound
    assert each == {"out_of_bounds": 0, "nan": 2, "bad_annotation": 1, "flat": 1, "amplitude": 2}
    keep, counts = reject_windows(w, RejectConfig(max_abs=None, flat_std=None,
                                                  bad_annotations=False), bad=bad)
    assert keep.sum() == 4 and counts["nan"] == 2


def test_events_epoching_labels_and_edges():
    ann = [(2.0, 0.0, "face"), (5.5, 0.0, "house"), (8.0, 0.0, "press"), (9.6, 0.0, "face"),
           (12.0, 1.0, "BAD_break"), (12.5, 0.0, "house")]
    raw = make_raw(seconds=14, annotations=ann)
    cfg = cfg_of(*NOFILTER, "labels.mode=events", "labels.events=face:0,house:1",
                 "windows.length_s=1", "labels.tmin=-0.5", "reject.max_abs=null")
    w = preprocess_raw(raw, cfg)
    np.testing.assert_array_equal(w.start, [300, 1000, 1820])
    np.testing.assert_array_equal(w.y, [0, 1, 0])
    assert w.rejected["bad_annotation"] == 1 and w.n_candidates == 4
    direct = raw.copy().resample(200.0, verbose="error").get_data()[:, 300:500] * 1e4
    np.testing.assert_allclose(w.x[0, :, 0], direct, rtol=1e-5, atol=1e-6)
    # an event too close to the end is out of bounds, not a crash
    raw2 = make_raw(seconds=5, annotations=[(1.0, 0.0, "face"), (4.7, 0.0, "face")])
    w2 = preprocess_raw(raw2, cfg)
    assert len(w2.x) == 1 and w2.rejected["out_of_bounds"] == 1


def test_missing_labels_and_recording_labels():
    raw = make_raw(seconds=12, annotations=[(1.0, 0.0, "other")])
    cfg = cfg_of(*NOFILTER, "labels.mode=events", "labels.events=face:0", "windows.length_s=1")
    with pytest.raises(RecordingError, match=r"no annotation matches labels.events \['face'\] "
                                             r"\(the recording has \['other'\]\)") as info:
        preprocess_raw(raw, cfg)
    assert info.value.reason == "no_labels"
    cfg = cfg_of(*NOFILTER, "labels.mode=recording", "labels.recording=*task-EC*:0,*task-EO*:1",
                 "windows.length_s=4", "reject.max_abs=null")
    assert set(preprocess_raw(raw, cfg, rec_id="sub-1_task-EO").y) == {1}
    with pytest.raises(RecordingError, match="matches none of the labels.recording keys"):
        preprocess_raw(raw, cfg, rec_id="sub-1_task-XX")


def test_recording_labels_match_exactly_or_by_pattern():
    labels = cfg_of("labels.mode=recording", 'labels.recording={"rec": 0, "rec_b": 1}').labels
    assert recording_label("rec", labels) == 0 and recording_label("rec_b", labels) == 1
    assert recording_label("rec_c", labels) is None  # no substring matching
    both = cfg_of("labels.mode=recording", 'labels.recording={"*rec*": 0, "rec_b": 1}').labels
    with pytest.raises(RecordingError, match=r"matches labels.recording keys \['\*rec\*', "
                                             r"'rec_b'\] with different labels"):
        recording_label("rec_b", both)


def test_nan_and_flat_channels_are_counted():
    raw = make_raw(seconds=40, amp_uv=5)
    data = raw.get_data()
    data[3, 2500:2600] = np.nan          # 10.0-10.4 s: window 1 of 4 (10-s windows)
    data[5, 7500:] = 0.0                 # flat from 30 s: window 3
    raw._data = data
    w = preprocess_raw(raw, cfg_of("windows.length_s=10", "filter.l_freq=1"))
    assert w.rejected["nan"] == 1 and np.isfinite(w.x).all()
    np.testing.assert_array_equal(w.start[:2], [0, 4000])
    raw = make_raw(seconds=40, amp_uv=5, sfreq=200.0)  # no resampling: the flat part stays 0
    data = raw.get_data()
    data[3, 2000:2080] = np.nan
    data[5, 6000:] = 0.0
    raw._data = data
    w = preprocess_raw(raw, cfg_of("windows.length_s=10", *NOFILTER))
    assert len(w.x) == 2 and w.rejected["nan"] == 1 and w.rejected["flat"] == 1
    np.testing.assert_array_equal(w.start, [0, 4000])
    data[5] = 3e-6  # a constant (dead) channel is named and interpolated from its neighbours
    w = preprocess_raw(raw, cfg_of("windows.length_s=10"))
    assert len(w.x) == 3 and w.rejected["flat"] == 0 and w.rejected["nan"] == 1
    assert w.interpolated == ["C4"] and "flat channel C4 interpolated" in w.notes
    assert w.x[:, 5].std() > 0.01  # C4 now carries its neighbours' signal
    w = preprocess_raw(raw, cfg_of("windows.length_s=10", "reject.flat_channels=reject"))
    assert len(w.x) == 0 and w.rejected["flat"] == 3 and w.rejected["nan"] == 1


def test_sfreq_too_low_and_too_short():
    raw = make_raw(seconds=40, sfreq=100.0)
    with pytest.raises(RecordingError, match="Nyquist frequency 50 Hz") as info:
        preprocess_raw(raw, cfg_of("filter.l_freq=60", "filter.h_freq=null"))
    assert info.value.reason == "sfreq_too_low"
    with pytest.raises(RecordingError, match="shorter than one window") as info:
        preprocess_raw(make_raw(seconds=20), cfg_of())
    assert info.value.reason == "too_short"


def test_trials_resample_zero_pad_labels():
    rng = np.random.default_rng(0)
    data = rng.standard_normal((6, 3, 50)) * 20 + 40.0  # µV with a DC offset, 0.5 s at 100 Hz
    trials = Trials(data=data, labels=["l", "r", "l", "r", "l", "r"], class_names=("l", "r"))
    cfg = cfg_of(*NOFILTER, "input.sfreq=100", "input.channels=C3,Cz,C4", "input.unit=uV",
                 "labels.mode=trials", "windows.length_s=1", "windows.pad=zero",
                 "windows.detrend=mean", "reject.max_abs=null")
    w = preprocess_trials(trials, cfg)
    assert w.x.shape == (6, 3, 1, 200) and w.y.tolist() == [0, 1, 0, 1, 0, 1]
    import mne

    ref = mne.filter.resample(data, up=2.0, verbose="error") / 100.0
    ref -= ref.mean(axis=-1, keepdims=True)
    np.testing.assert_allclose(w.x[:, :, 0, :100], ref, rtol=1e-5, atol=1e-6)
    assert (w.x[:, :, 0, 100:] == 0).all()
    with pytest.raises(RecordingError, match="set windows.pad=zero"):
        preprocess_trials(trials, cfg_of(*NOFILTER, "input.sfreq=100", "input.channels=C3,Cz,C4",
                                         "input.unit=uV", "windows.length_s=1"))
    with pytest.raises(RecordingError, match="trials without input.sfreq, input.channels"):
        preprocess_trials(trials, cfg_of())
    with pytest.raises(RecordingError, match="the trials have no labels"):
        preprocess_trials(Trials(data=data, labels=None), cfg)
