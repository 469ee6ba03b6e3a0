"""Readers on small files the tests write: EDF, BDF, BrainVision, EEGLAB, FIF, BIDS, .ts, arrays."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from csbrain.data.readers import (
    ReadError,
    Recording,
    find_recordings,
    load_recording,
    raw_from_array,
    read_raw,
    read_ts,
    source_sha256,
)
from tests.data.conftest import make_raw, write, write_ts


@pytest.mark.parametrize("ext, atol", [(".edf", 2e-9), (".bdf", 1e-10), (".vhdr", 1e-10),
                                       (".set", 1e-10), (".fif", 1e-12)])
def test_mne_formats_roundtrip(tmp_path, ext, atol):
    raw = make_raw(seconds=12)
    path = write(raw, tmp_path / f"r{ext}")
    got = read_raw(path)
    assert got.ch_names == raw.ch_names and got.info["sfreq"] == 250.0
    np.testing.assert_allclose(got.get_data(), raw.get_data(), atol=atol)


def test_bids_root(tmp_path):
    import mne
    import mne_bids

    raw = make_raw(seconds=12, annotations=[(2.0, 0.0, "face"), (5.0, 0.0, "house")])
    raw.set_meas_date(1_600_000_000)
    src = mne.io.read_raw(write(raw, tmp_path / "src.edf"), verbose="error")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for sub in ("01", "02"):
            mne_bids.write_raw_bids(src, mne_bids.BIDSPath(subject=sub, task="faces",
                                                           root=tmp_path / "bids", datatype="eeg"),
                                    verbose=False)
    recs = find_recordings([tmp_path / "bids"])
    assert [r.rec_id for r in recs] == ["sub-01_task-faces", "sub-02_task-faces"]
    assert recs[1].subject == "02" and recs[1].task == "faces" and recs[1].kind == "bids"
    got = load_recording(recs[0])
    assert sorted(set(got.annotations.description)) == ["face", "house"]
    np.testing.assert_allclose(got.get_data(), raw.get_data(), atol=2e-9)


def test_ts_format(tmp_path):
    data = np.arange(2 * 3 * 5, dtype=float).reshape(2, 3, 5) - 7.5
    path = write_ts(tmp_path / "x_TRAIN.ts", data, ["right", "left"])
    t = read_ts(path)
    np.testing.assert_array_equal(t.data, data)
    assert t.labels == ["right", "left"] and t.class_names == ("left", "right")
    (tmp_path / "bad.ts").write_text("@problemName x\n@classLabel true a b\n@data\n1,2:a\n1:b\n")
    with pytest.raises(ReadError, match="unequal lengths"):
        read_ts(tmp_path / "bad.ts")
    (tmp_path / "nodata.ts").write_text("@problemName x\n")
    with pytest.raises(ReadError, match="no @data line"):
        read_ts(tmp_path / "nodata.ts")
    (tmp_path / "lab.ts").write_text("@classLabel true a b\n@data\n1,2:c\n")
    with pytest.raises(ReadError, match=r"labels \['c'\] are not declared"):
        read_ts(tmp_path / "lab.ts")


def test_arrays_in_memory():
    x = np.ones((2, 400)) * 50.0
    raw = raw_from_array(x, ["Cz", "Pz"], 200.0, unit="uV")
    np.testing.assert_allclose(raw.get_data(), 50e-6)
    with pytest.raises(ValueError, match=r"expected \(n_channels=3, n_times\)"):
        raw_from_array(x, ["Cz", "Pz", "Oz"], 200.0)
    rec = Recording("a", "array", array={"data": np.zeros((4, 2, 50)), "ch_names": ["Cz", "Pz"],
                                         "sfreq": 100, "unit": "uV", "labels": ["x"] * 4})
    trials = load_recording(rec)
    assert trials.data.shape == (4, 2, 50) and trials.sfreq == 100.0


def test_find_recordings_folder_ids_and_hash(tmp_path):
    for sub in ("s1", "s2"):
        (tmp_path / sub).mkdir()
        write(make_raw(seconds=5), tmp_path / sub / "rest.edf")
    write(make_raw(seconds=5), tmp_path / "other.vhdr")
    recs = find_recordings([tmp_path])
    assert sorted(r.rec_id for r in recs) == ["other", "s1__rest", "s2__rest"]
    vhdr = next(r for r in recs if r.rec_id == "other")
    assert sorted(source_sha256(vhdr)) == ["other.eeg", "other.vhdr", "other.vmrk"]
    with pytest.raises(FileNotFoundError, match="does not exist; expected a file, a folder"):
        find_recordings([tmp_path / "missing.edf"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="has no EEG files"):
        find_recordings([tmp_path / "empty"])


def test_unreadable_and_truncated(tmp_path):
    good = write(make_raw(seconds=20), tmp_path / "g.edf")
    data = open(good, "rb").read()
    (tmp_path / "trunc.edf").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.edf").write_bytes(b"not an edf file" * 20)
    with pytest.raises(ReadError, match=r"junk.edf'.*Bad EDF file"):
        read_raw(tmp_path / "junk.edf")
    with pytest.raises(ReadError, match=r"trunc.edf' is truncated.*input.allow_truncated=true"):
        read_raw(tmp_path / "trunc.edf")
    assert read_raw(tmp_path / "trunc.edf", allow_truncated=True).n_times < 20 * 250
