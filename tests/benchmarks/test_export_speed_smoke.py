"""The export speed benchmark runs in its quick mode and writes its JSON (no timing checks)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_export_speed_quick_json(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    out = tmp_path / "speed.json"
    cmd = [sys.executable, str(REPO / "benchmarks" / "export_speed.py"), "--quick", "--threads",
           "1", "--batch", "2", "--seconds", "1", "--json", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "eager / onnxruntime time ratio" in proc.stdout
    res = json.loads(out.read_text())
    assert res["quick"] is True and res["parity_max_abs_diff"] <= 1e-4
    assert set(res["median_s"]) == {"eager", "onnxruntime"}
    assert res["eager_over_onnxruntime"] > 0
