"""Released variants reproduce the released scripts' arithmetic on the format-true fixtures:
BCIC-IV-2a per-trial causal filtering (CBraMod ``preprocessing_bciciv2a.py``), MentalArithmetic
without filters (CBraMod ``preprocessing_stress.py``), TUSL z-scored with statistics over every
file (CSBrain ``preprocessing/TUSL/json_generate.py`` and ``datasets/tusl_dataset.py``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from csbrain.benchmark.prepare import converter, prepare_benchmark, preprocess_recording
from csbrain.benchmark.recipes import BenchmarkError, get_recipe


def _script_bciciv2a(path):
    """preprocessing_bciciv2a.py l.67-94 and bciciv2a_dataset.py ``data / 100``, verbatim."""
    import scipy.io
    from scipy.signal import butter, lfilter, resample

    data = scipy.io.loadmat(path)
    out = []
    for j in range(len(data["data"][0])):
        labels = data["data"][0, j][0, 0][2][:, 0]
        if labels.shape[0] == 0:
            continue
        raw_data = data["data"][0, j][0, 0][0][:, :22]
        events = data["data"][0, j][0, 0][1][:, 0].tolist()
        events.append(raw_data.shape[0])
        for i in range(len(events) - 1):
            sample = raw_data[int(events[i]):int(events[i + 1])].transpose(1, 0)
            sample = sample - np.mean(sample, axis=0, keepdims=True)
            b, a = butter(5, [0.3 / 125, 40 / 125], btype="band")
            sample = lfilter(b, a, sample, -1)[:, 2 * 250:6 * 250]
            out.append(resample(sample, 800, axis=-1).reshape(22, 4, 200) / 100)
    return np.asarray(out)


def test_bciciv2a_released_is_the_scripts_per_trial_filter(tmp_path):
    from tests.benchmark.fixtures import bciciv2a as fx

    raw = fx.make(tmp_path / "raw")
    rec = next(r for r in converter("bciciv2a").recordings(raw) if r.name == "A01T")
    released = preprocess_recording(rec, get_recipe("bciciv2a", "released"))
    fixed = preprocess_recording(rec, get_recipe("bciciv2a", "fixed"))
    want = _script_bciciv2a(raw / "A01T.mat")
    assert released["x"].shape == want.shape == fixed["x"].shape == (8, 22, 4, 200)
    np.testing.assert_allclose(released["x"], want, rtol=1e-5, atol=1e-5)
    assert np.abs(fixed["x"] - want).max() > 0.05
    np.testing.assert_array_equal(released["start"], fixed["start"])
    np.testing.assert_array_equal(released["y"], [0, 1, 2, 3] * 2)


def test_segment_filter_refuses_a_notch():
    from csbrain.benchmark.converters._base import Segment, SourceRecording

    recipe = get_recipe("bciciv2a", "released")
    recipe["filter"] = dict(recipe["filter"], notch=[50.0])
    rec = SourceRecording("r", "s", np.zeros((22, 3000)), 250.0, recipe["channels"],
                          [Segment(4.0, 4.0, 0)])
    with pytest.raises(BenchmarkError, match="no notch"):
        preprocess_recording(rec, recipe)


def test_mental_arithmetic_released_only_resamples(tmp_path):
    import mne

    from tests.benchmark.fixtures import mental_arithmetic as fx

    raw = fx.make(tmp_path, subjects=(0,))
    rec = next(converter("mental_arithmetic").recordings(raw))
    released = preprocess_recording(rec, get_recipe("mental_arithmetic", "released"))
    fixed = preprocess_recording(rec, get_recipe("mental_arithmetic", "fixed"))
    # preprocessing_stress.py l.35-45 with the 20th channel (A2-A1) dropped as
    # CSBrain models/model_for_stress.py does, and stress_dataset.py ``data / 100``
    ra = mne.io.read_raw_edf(raw / "Subject00_1.edf", preload=True, verbose="error")
    ra.pick(fx.CHANNELS[:20])
    ra.reorder_channels(fx.CHANNELS[:20])
    ra.resample(200, verbose="error")
    eeg = ra.get_data(units="uV")
    eeg = eeg[:, :eeg.shape[1] - eeg.shape[1] % 1000]
    want = eeg.reshape(20, -1, 5, 200).transpose(1, 0, 2, 3)[:, :-1] / 100
    recipe_channels = get_recipe("mental_arithmetic", "released")["channels"]
    assert [c[4:].upper() for c in fx.CHANNELS[:19]] == recipe_channels  # the script's first 19
    assert released["x"].shape == want.shape == (2, 19, 5, 200)
    np.testing.assert_allclose(released["x"], want, rtol=1e-5, atol=1e-5)
    assert np.abs(fixed["x"] - want).max() > 0.01


def _tusl_windows(store):
    from csbrain.data.store import WindowStore

    s = WindowStore(store)
    return {r: np.asarray(s.arrays(r)[0][:], dtype=np.float64) for r in s.recordings()}


def test_tusl_released_zscores_with_statistics_over_every_file(tmp_path):
    from tests.benchmark.fixtures import tusl as fx

    raw = fx.make(tmp_path / "raw")
    fixed = prepare_benchmark("tusl", raw, tmp_path / "f")
    released = prepare_benchmark("tusl", raw, tmp_path / "r", variant="released")
    assert "normalize_stats" not in fixed and set(released["splits"].values()) >= {"test"}
    xf, xr = _tusl_windows(tmp_path / "f"), _tusl_windows(tmp_path / "r")
    assert sorted(xf) == sorted(xr) == sorted(released["splits"])
    # json_generate.py l.49-96, 114-115: mean over all slices (every split) of each slice's
    # per-channel mean and np.std, in volts (fixed windows are 100 uV units)
    volts = np.concatenate([xf[r] for r in sorted(xf)]).reshape(-1, 19, 2000) * 1e-4
    mean, std = volts.mean(axis=-1).mean(axis=0), volts.std(axis=-1).mean(axis=0)
    stats = released["normalize_stats"]
    assert stats["n_windows"] == len(volts) == sum(released["n_windows"].values())
    np.testing.assert_allclose(stats["mean"], mean, rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(stats["std"], std, rtol=1e-5)
    on_disk = json.loads((tmp_path / "r" / "benchmark.json").read_text())
    assert on_disk["normalize_stats"] == stats
    for r in xf:  # tusl_dataset.py l.37-40: (X - mu) / (sigma + 1e-8)
        want = (xf[r] * 1e-4 - mean[None, :, None, None]) / (std[None, :, None, None] + 1e-8)
        np.testing.assert_allclose(xr[r], want, rtol=1e-4, atol=1e-4)
        assert np.abs(xr[r] - xf[r]).max() > 0.1
