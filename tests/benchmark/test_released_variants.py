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


def _script_tusl(raw_dir):
    """CSBrain preprocessing/TUSL/data_process.py (l.40-100), json_generate.py (l.49-115) and
    datasets/tusl_dataset.py (l.37-40, 61-77) restated with MNE and scipy: the filtered
    recording sliced into 10 s at the source rate, each slice resampled to 250 Hz
    (Raw.resample, npad auto), statistics over every slice of the copy at 250 Hz, then each
    slice resampled to 2000 samples and z-scored. The 19 channels the released model keeps."""
    import mne
    from scipy.signal import resample

    from csbrain.benchmark.converters import tusl

    chans = get_recipe("tusl")["channels"]
    slices = {}
    for rec in tusl.recordings(raw_dir):
        path = next(raw_dir.rglob(f"{rec.name}.edf"))
        raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
        raw.rename_channels({f"EEG {c}-REF": c for c in chans})
        raw.pick(chans)
        raw.filter(l_freq=0.1, h_freq=75.0, verbose="error")
        raw.notch_filter(freqs=60.0, verbose="error")
        sf, out = raw.info["sfreq"], []
        rows = [ln.split(",") for ln in path.with_suffix(".csv").read_text().splitlines()
                if ln and not ln.startswith(("#", "channel"))]
        for start_time, stop_time in dict.fromkeys((float(r[1]), float(r[2])) for r in rows):
            start, stop = int(start_time * sf), int(stop_time * sf)   # the label file's times
            for s0 in range(start, stop, int(10 * sf)):
                if s0 + int(10 * sf) > stop:
                    break
                piece = mne.io.RawArray(raw.get_data(start=s0, stop=s0 + int(10 * sf)),
                                        info=raw.info, verbose="error")
                out.append(piece.resample(250, npad="auto", verbose="error").get_data())
        slices[rec.name] = np.asarray(out)
    every = np.concatenate(list(slices.values()))
    mean, std = every.mean(axis=-1).mean(axis=0), every.std(axis=-1).mean(axis=0)
    windows = {r: (resample(x, 2000, axis=-1) - mean[:, None]) / (std[:, None] + 1e-8)
               for r, x in slices.items()}
    return windows, mean, std, len(every)


def test_tusl_released_is_the_released_pipeline(tmp_path):
    from tests.benchmark.fixtures import tusl as fx

    raw = fx.make(tmp_path / "raw")
    fixed = prepare_benchmark("tusl", raw, tmp_path / "f")
    released = prepare_benchmark("tusl", raw, tmp_path / "r", variant="released")
    assert "normalize_stats" not in fixed and set(released["splits"].values()) >= {"test"}
    xf, xr = _tusl_windows(tmp_path / "f"), _tusl_windows(tmp_path / "r")
    assert sorted(xf) == sorted(xr) == sorted(released["splits"])
    want, mean, std, n = _script_tusl(raw)
    stats = released["normalize_stats"]
    assert stats["n_windows"] == n == sum(released["n_windows"].values())
    np.testing.assert_allclose(stats["mean"], mean, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(stats["std"], std, rtol=1e-6)
    on_disk = json.loads((tmp_path / "r" / "benchmark.json").read_text())
    assert on_disk["normalize_stats"] == stats
    for r in xr:
        got = xr[r].reshape(len(want[r]), 19, 2000)
        np.testing.assert_allclose(got, want[r], rtol=1e-4, atol=1e-4)
        assert np.abs(xr[r] - xf[r]).max() > 0.1


def test_tusl_released_statistics_leave_out_a_file_without_a_recipe_channel(tmp_path):
    from tests.benchmark.fixtures import tusl as fx
    from tests.benchmark.fixtures._edf import noise, write_edf
    from tests.benchmark.fixtures._tuh import TUH_REF

    raw = fx.make(tmp_path / "raw")
    edf = next(raw.rglob(f"{fx.SUBJECTS[0]}_s001_t000.edf"))
    write_edf(edf, noise(np.random.default_rng(0), len(TUH_REF) - 1, 40, 256.0), 256.0,
              TUH_REF[1:])                                          # no EEG FP1-REF
    rec = prepare_benchmark("tusl", raw, tmp_path / "r", variant="released")
    assert rec["skipped"] == {f"{fx.SUBJECTS[0]}_s001_t000": "missing_channels"}
    assert rec["normalize_stats"]["n_windows"] == sum(rec["n_windows"].values()) == 12
