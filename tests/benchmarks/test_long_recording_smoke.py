"""The long-recording benchmark runs in its quick mode and writes its JSON (no timing checks:
speed targets live in the benchmark's output, not in tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mne
import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import long_recording  # noqa: E402


def test_generated_edf_reads_back_with_an_eeg_spectrum(tmp_path):
    path = long_recording.write_recording(tmp_path / "x.edf", hours=60 / 3600)
    raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    assert raw.info["sfreq"] == 256 and len(raw.ch_names) == 19 and raw.n_times == 60 * 256
    x = raw.get_data()[8] * 1e6                          # O1, µV
    assert 5 < x.std() < 100
    f = np.fft.rfftfreq(len(x), 1 / 256)
    p = np.abs(np.fft.rfft(x)) ** 2
    band = lambda lo, hi: p[(f >= lo) & (f < hi)].mean()  # noqa: E731
    assert band(1, 4) > 5 * band(30, 40)                  # 1/f, not white
    assert band(9.5, 11) > 3 * band(12, 14)               # an alpha peak


def test_long_recording_quick_json(tmp_path):
    out = tmp_path / "long.json"
    cmd = [sys.executable, str(REPO / "benchmarks" / "long_recording.py"), "--quick",
           "--no-flatten", "--threads", "1", "--dir", str(tmp_path), "--json", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "== targets" in proc.stdout
    res = json.loads(out.read_text())
    assert {(r["head"], r["dtype"], r["hours"]) for r in res["runs"]} == {
        ("mean", d, h) for d in ("fp32", "bf16") for h in (0.05, 0.1)}
    for r in res["runs"]:
        if r["dtype"] == "fp32" or "skipped" not in r:
            assert r["windows"] == round(r["hours"] * 120)
            assert r["x_realtime"] > 0 and r["peak_rss_mb"] > 0
            assert set(r["stage_s"]) == {"read", "filter_resample", "model"}
            assert all(v > 0 for v in r["stage_s"].values())
        else:
            assert r["skipped"].startswith("not supported on this CPU")
    assert set(res["targets"]) == {"x_realtime_fp32", "peak_rss_mb", "rss_spread"}
    assert res["flops_per_window_mean"] > 1e9
