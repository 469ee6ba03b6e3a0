"""CHB-MIT released windows equal CBraMod ``process1.py``/``process2.py`` and
``datasets/chb_dataset.py`` on the fixture: window positions and labels, each window resampled
on its own (short ones at a file's end stretched), the files the script reads, zero-filled
missing channels; the fixed variant skips a file that lacks a channel."""

from __future__ import annotations

import numpy as np
from scipy.signal import resample

from csbrain.benchmark.converters import chbmit
from csbrain.benchmark.converters._edf import read_edf
from csbrain.benchmark.prepare import prepare_benchmark
from csbrain.benchmark.recipes import get_recipe
from csbrain.data.store import WindowStore
from tests.benchmark.fixtures.chbmit import CHANNELS, NO_FP1_F7, PREPARE_SUBJECTS, make

PICK = get_recipe("chbmit")["channels"]


def _script(times_s, n):
    """process1.py l.50-53 and process2.py l.108-148 restated on sample indices at 256 Hz:
    (start, stop) of every saved segment and its label."""
    times = [(int(s) * 256 - 1, int(e) * 256 - 1) for s, e in times_s]
    out = []
    for i in range(0, n, 2560):
        if i + 2560 <= n:
            lab = int(any(i < s < i + 2560 or i < e < i + 2560 for s, e in times))
            out.append((i, i + 2560, lab))
    for s, e in times:
        out += [(i, min(i + 2560, n), 1) for i in range(max(0, s - 256), min(e + 256, n), 1280)]
    return out


def test_released_windows_match_script(tmp_path):
    raw = make(tmp_path)
    recipe = get_recipe("chbmit", "released")
    recs = list(chbmit.recordings(raw, recipe=recipe))
    assert any(seg.label for r in recs for seg in r.segments)
    short = 0
    for r in recs:
        table = chbmit.seizures(raw / r.subject / f"{r.subject}-summary.txt")
        got = [(int(round(s.onset_s * 256)), int(round((s.onset_s + s.duration_s) * 256)),
                s.label) for s in r.segments]
        assert got == _script(table[f"{r.name}.edf"], r.data.shape[1])
        short += sum(b - a < 2560 for a, b, _ in got)
    assert short == 2 * 3                     # the 52-58 s seizure's extra windows, 3 patients


def test_released_store_equals_the_released_loader(tmp_path):
    """Every window of the released store = scipy.signal.resample(segment_uV, 2000) / 100 of
    the script's segment (chb_dataset.py l.29-31), in the recipe's channel order."""
    raw = make(tmp_path)
    store = tmp_path / "s"
    rec = prepare_benchmark("chbmit", raw, store, variant="released",
                            subjects=PREPARE_SUBJECTS)
    assert rec["skipped"] == {}
    ws = WindowStore(store)
    for name in ("chb01_01", "chb01_02", NO_FP1_F7, "chb23_07"):
        subject = name.split("_")[0]
        data, sfreq, names = read_edf(raw / subject / f"{name}.edf")
        # MNE reads the two T8-P8 as T8-P8-0, T8-P8-1; the released code keeps the first
        uv = {n.removesuffix("-0"): data[i] * 1e6 for i, n in enumerate(names)}
        sig = np.array([uv.get(c, np.zeros(data.shape[1])) for c in PICK])
        times = chbmit.seizures(raw / subject / f"{subject}-summary.txt")[f"{name}.edf"]
        want = np.stack([resample(sig[:, a:b], 2000, axis=1) / 100
                         for a, b, _ in _script(times, data.shape[1])])
        x = np.asarray(ws.arrays(name)[0][:]).reshape(len(want), len(PICK), 2000)
        order = [ws.entry(name)["source_channels"].index(c) for c in PICK]
        np.testing.assert_allclose(x[:, order], want, rtol=1e-5, atol=1e-5)
        if name == NO_FP1_F7:
            assert not np.any(x[:, order[0]])          # FP1-F7 missing: zeros, as released


def test_released_reads_only_the_files_of_process1(tmp_path):
    keep = get_recipe("chbmit", "released")["released_files"]
    assert not {"chb12", "chb13", "chb17"} & set(keep)
    assert chbmit.released_file("chb24_01", keep) and not chbmit.released_file("chb24_02", keep)
    assert chbmit.released_file("chb02_16", keep) and not chbmit.released_file("chb02_16+", keep)
    assert not chbmit.released_file("chb23_05", keep) and chbmit.released_file("chb23_06", keep)
    raw = make(tmp_path)
    (raw / "chb23" / "chb23_06.edf").rename(raw / "chb23" / "chb23_05.edf")
    summary = raw / "chb23" / "chb23-summary.txt"
    summary.write_text(summary.read_text().replace("chb23_06", "chb23_05"))
    names = {r.name for r in chbmit.recordings(raw, recipe=get_recipe("chbmit", "released"))}
    assert "chb23_05" not in names and "chb23_07" in names
    assert "chb23_05" in {r.name for r in chbmit.recordings(raw)}


def test_fixed_skips_a_file_without_a_recipe_channel(tmp_path):
    raw = make(tmp_path)
    a = [r.segments for r in chbmit.recordings(raw)]
    b = [r.segments for r in chbmit.recordings(raw, recipe=get_recipe("chbmit", "fixed"))]
    assert a == b and a[0][1].label == 1 and a[0][1].onset_s == 20
    rec = prepare_benchmark("chbmit", raw, tmp_path / "s", variant="fixed",
                            subjects=PREPARE_SUBJECTS)
    assert rec["skipped"] == {NO_FP1_F7: "missing_channels"}
    assert NO_FP1_F7 not in rec["splits"] and CHANNELS[0] == "FP1-F7"
