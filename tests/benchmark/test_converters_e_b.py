"""Converters of BCIC2020-3 (MATLAB v5 + v7.3 + xlsx answer sheet) and SEED-V (Neuroscan CNT) on
their format-true fixtures."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from csbrain.benchmark.converters import bcic2020_3, seed_v
from csbrain.benchmark.converters._base import DatasetLayoutError
from tests.benchmark.fixtures import bcic2020_3 as bcic_fix
from tests.benchmark.fixtures import seed_v as seed_fix


def test_bcic2020_3_reads_all_three_sets(tmp_path):
    raw = bcic_fix.make(tmp_path, subjects=(1, 2))
    assert bcic2020_3.files(raw) == [
        "Test set/Data_Sample01.mat", "Test set/Data_Sample02.mat",
        "Track3_Answer Sheet_Test.xlsx", "Training set/Data_Sample01.mat",
        "Training set/Data_Sample02.mat", "Validation set/Data_Sample01.mat",
        "Validation set/Data_Sample02.mat"]
    recs = {r.name: r for r in bcic2020_3.recordings(raw)}
    assert sorted(recs) == sorted(f"{s}-Data_Sample0{k}" for s in ("train", "val", "test")
                                  for k in (1, 2))
    for name, shift in (("train", 0), ("val", 1), ("test", 2)):
        r = recs[f"{name}-Data_Sample01"]
        assert r.split == name and r.subject == "Data_Sample01"
        assert r.sfreq == 256.0 and r.ch_names == bcic_fix.CHANNELS
        assert r.data.shape == (64, 5 * bcic_fix.N_SAMPLES)
        assert 1e-6 < float(np.std(r.data)) < 1e-4  # µV noise in volts
        assert [s.label for s in r.segments] == [(i + shift) % 5 for i in range(5)]
        seg = r.segments[1]
        assert seg.duration_s == 3.0
        assert seg.onset_s * 256 == pytest.approx(2 * bcic_fix.N_SAMPLES - 768)


def test_bcic2020_3_answer_sheet_and_malformed_files(tmp_path):
    raw = bcic_fix.make(tmp_path, subjects=(3,))
    sheet = raw / "Track3_Answer Sheet_Test.xlsx"
    sheet.unlink()
    with pytest.raises(DatasetLayoutError, match="Answer Sheet"):
        list(bcic2020_3.recordings(raw))
    sheet.write_bytes(b"not a zip")
    with pytest.raises(DatasetLayoutError, match="Answer Sheet"):
        list(bcic2020_3.recordings(raw))
    bad = raw / "Training set" / "Data_Sample03.mat"
    bad.write_bytes(b"garbage" * 30)
    with pytest.raises(DatasetLayoutError, match="Data_Sample03.mat"):
        list(bcic2020_3.recordings(raw))


def test_seed_v_cuts_the_released_trials(tmp_path):
    raw = seed_fix.make(tmp_path, subjects=(1,), sfreq=10, sessions=("1", "2", "3"))
    assert seed_v.files(raw) == ["EEG_raw/1_1_20180804.cnt", "EEG_raw/1_2_20180805.cnt",
                                 "EEG_raw/1_3_20180806.cnt"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        recs = list(seed_v.recordings(raw))
    assert len(recs) == 45
    assert [r.meta["trial"] for r in recs[:15]] == list(range(1, 16))
    assert [r.segments[0].label for r in recs[15:30]] == seed_v.LABELS["2"]
    r = recs[1]
    assert r.name == "1_1_20180804-t02" and r.subject == "1" and r.meta["session"] == "1"
    assert r.sfreq == 10.0 and r.ch_names == seed_fix.CHANNELS
    assert r.data.shape == (66, (228 - 132) * 10)
    assert r.segments[0].duration_s == pytest.approx(96.0)
    assert 5e-6 < float(np.std(r.data)) < 2e-5  # 10 µV noise, in volts


def test_seed_v_malformed_copies(tmp_path):
    raw = seed_fix.make(tmp_path, subjects=(2,), sfreq=10, sessions=("1", "3"))
    short = raw / "EEG_raw" / "2_3_20180806.cnt"
    seed_fix.write_cnt(short, np.zeros((66, 100 * 10)), 10, seed_fix.CHANNELS)
    with pytest.raises(DatasetLayoutError, match="2_3_20180806.cnt.*3066 s"):
        list(seed_v.recordings(raw))
    short.write_bytes(b"\x00" * 50)
    with pytest.raises(DatasetLayoutError, match="2_3_20180806.cnt"):
        list(seed_v.recordings(raw))
