"""Converters of SHU-MI, FACED, SEED-VIG, ISRUC, MentalArithmetic and Mumtaz2016 on their
format-true fixtures (few subjects each, so every test runs in about a second)."""

from __future__ import annotations

import importlib
import pickle
from pathlib import Path

import numpy as np
import pytest

from csbrain.benchmark.converters._base import DatasetLayoutError

CASES = {
    # name: (make kwargs, n recordings, n channels, sfreq, labels of the first recording)
    "shu_mi": ({"subjects": (1, 2)}, 10, 32, 250.0, [0, 1]),
    "faced": ({"subjects": (0, 80)}, 2, 32, 250.0,
              [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 6, 6, 6, 7, 7, 7, 8, 8,
               8]),
    "seed_vig": ({"names": ("1_20151124_noon_2", "2_20151106_noon")}, 2, 17, 200.0,
                 [0.1, 0.3]),
    "isruc": ({"subjects": (1, 2)}, 2, 10, 200.0, [0, 1, 2, 3, 4] * 4 + [0, 1]),
    "mental_arithmetic": ({"subjects": (0, 1)}, 4, 21, 500.0, [0]),
    "mumtaz2016": ({"healthy": (1,), "mdd": (1,)}, 4, 22, 256.0, [0]),
}


def _load(name):
    conv = importlib.import_module(f"csbrain.benchmark.converters.{name}")
    fix = importlib.import_module(f"tests.benchmark.fixtures.{name}")
    return conv, fix


@pytest.mark.parametrize("name", sorted(CASES))
def test_converter_reads_fixture(name, tmp_path):
    conv, fix = _load(name)
    kwargs, n_rec, n_ch, sfreq, first_labels = CASES[name]
    raw = fix.make(tmp_path, **kwargs)
    listed = conv.files(raw)
    assert listed == sorted(listed) and listed
    assert all((raw / f).is_file() for f in listed)
    recs = list(conv.recordings(raw))
    assert len(recs) == n_rec
    assert len({r.name for r in recs}) == n_rec
    for r in recs:
        assert r.data.shape[0] == n_ch == len(r.ch_names)
        assert r.sfreq == sfreq
        # µV-scale noise (sd 10-20 µV) returned in volts
        assert 1e-6 < float(np.std(r.data)) < 1e-4
        assert r.meta["file"] in listed
        for s in r.segments:
            assert 0 <= s.onset_s and s.onset_s + s.duration_s <= r.data.shape[1] / r.sfreq + 1e-9
    np.testing.assert_allclose([s.label for s in recs[0].segments], first_labels)


def test_isruc_reads_scorer_one(tmp_path):
    conv, fix = _load("isruc")
    raw = fix.make(tmp_path, subjects=(91,))
    (raw / "91" / "91_1.txt").write_text("5\n3\n2\n\n")
    (rec,) = conv.recordings(raw)
    assert [s.label for s in rec.segments] == [4, 3, 2]
    assert [s.onset_s for s in rec.segments] == [0.0, 30.0, 60.0]
    assert conv.files(raw) == ["91/91.rec", "91/91_1.txt"]


def test_mumtaz_skips_task_and_labels_mdd(tmp_path):
    conv, fix = _load("mumtaz2016")
    raw = fix.make(tmp_path, healthy=(2,), mdd=(3,))
    assert conv.files(raw) == ["H S2 EC.edf", "H S2 EO.edf", "MDD S3 EC.edf", "MDD S3 EO.edf"]
    labels = {r.name: r.segments[0].label for r in conv.recordings(raw)}
    assert labels == {"H S2 EC": 0, "H S2 EO": 0, "MDD S3 EC": 1, "MDD S3 EO": 1}


def test_mental_arithmetic_labels_rest_and_task(tmp_path):
    conv, fix = _load("mental_arithmetic")
    raw = fix.make(tmp_path, subjects=(32,))
    recs = {r.name: r for r in conv.recordings(raw)}
    assert {k: r.segments[0].label for k, r in recs.items()} == {"Subject32_1": 0,
                                                                "Subject32_2": 1}
    assert recs["Subject32_1"].subject == "Subject32"


def _corrupt(name, raw: Path) -> Path:
    """Damage one file of the copy the way a broken download would; return it."""
    conv, _ = _load(name)
    target = raw / [f for f in conv.files(raw) if not f.endswith(".txt")][0]
    if name == "faced":
        with open(target, "wb") as f:
            pickle.dump(np.zeros((3, 32, 10)), f)
    elif name == "shu_mi":
        from scipy.io import savemat
        savemat(target, {"data": np.zeros((2, 32, 10))})
    else:
        target.write_bytes(b"not a valid file" * 4)
    return target


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_copy_names_the_file(name, tmp_path):
    conv, fix = _load(name)
    raw = fix.make(tmp_path, **CASES[name][0])
    bad = _corrupt(name, raw)
    with pytest.raises(DatasetLayoutError, match=bad.name):
        list(conv.recordings(raw))


def test_isruc_unknown_stage_names_the_file(tmp_path):
    conv, fix = _load("isruc")
    raw = fix.make(tmp_path, subjects=(5,))
    (raw / "5" / "5_1.txt").write_text("0\n7\n")
    with pytest.raises(DatasetLayoutError, match=r"5_1\.txt.*line 2"):
        list(conv.recordings(raw))


def test_seed_vig_labels_longer_than_signal(tmp_path):
    from scipy.io import savemat

    conv, fix = _load("seed_vig")
    raw = fix.make(tmp_path, names=("2_20151106_noon",))
    savemat(raw / "perclos_labels" / "2_20151106_noon.mat", {"perclos": np.ones((5, 1))})
    with pytest.raises(DatasetLayoutError, match="2_20151106_noon.mat"):
        list(conv.recordings(raw))


@pytest.mark.parametrize("name, label_file", [("isruc", "7/7_1.txt"),
                                              ("seed_vig", "perclos_labels/2_20151106_noon.mat")])
def test_missing_label_file_is_named(name, label_file, tmp_path):
    conv, fix = _load(name)
    kwargs = {"subjects": (7,)} if name == "isruc" else {"names": ("2_20151106_noon",)}
    raw = fix.make(tmp_path, **kwargs)
    (raw / label_file).unlink()
    assert label_file not in conv.files(raw)
    with pytest.raises(DatasetLayoutError, match=Path(label_file).name):
        list(conv.recordings(raw))
