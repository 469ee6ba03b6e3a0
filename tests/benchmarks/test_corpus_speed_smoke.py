"""The mixed-montage throughput benchmark runs in its quick mode and writes its JSON (no timing
checks: speed targets live in the benchmark's output, not in tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_corpus_speed_quick_json(tmp_path):
    out = tmp_path / "corpus.json"
    cmd = [sys.executable, str(REPO / "benchmarks" / "corpus_speed.py"), "--quick", "--steps", "2",
           "--json", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert set(res["tokens_per_s"]) == {"A only", "B only", "mixed A+B"}
    assert all(v > 0 for v in res["tokens_per_s"].values())
    assert res["mixed_over_single"] > 0
