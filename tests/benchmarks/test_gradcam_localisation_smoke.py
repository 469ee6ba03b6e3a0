"""The Grad-CAM localisation benchmark runs on one seed and writes its JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_gradcam_localisation_one_seed(tmp_path):
    out = tmp_path / "gc.json"
    cmd = [sys.executable, str(REPO / "benchmarks" / "gradcam_localisation.py"), "--seeds", "1",
           "--json", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["n_models"] == 1 and set(res["counts"]) == {"embedding", "output"}
    # seed 0 is the tests' model: the default map finds the occipital region
    assert res["rows"][0]["first"]["embedding"] == "occipital"
