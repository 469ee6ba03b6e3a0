"""The loader throughput benchmark runs in its quick mode and writes its JSON (no timing checks:
speed targets live in the benchmark's output, not in tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_loader_speed_quick_json(tmp_path):
    out = tmp_path / "loader.json"
    cmd = [sys.executable, str(REPO / "benchmarks" / "loader_speed.py"), "--quick",
           "--workers", "0,1", "--json", str(out), "--dir", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert [r["shape"] for r in res["results"]] == ["19x30", "128x30"]
    for r in res["results"]:
        assert set(r["rates"]) == {"today", "random", "block", "threads"}
        assert set(r["rates"]["threads"]) == {"1"}
        assert all(v["windows_per_s"] > 0 for rates in r["rates"].values()
                   for v in rates.values())
        assert set(r["rates"]["block"]) == {"0", "1"}
        q = r["quality"]
        assert q["block"]["shards_per_batch"] <= q["random"]["shards_per_batch"]
        assert 0 < q["random"]["gap_ratio"] < 2
        assert r["bounds"]["codec_decode_only"] > 0
