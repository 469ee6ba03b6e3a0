"""The speed benchmark runs in its quick mode and writes the expected JSON (no timing checks)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_model_speed_quick_json(tmp_path):
    out = tmp_path / "speed.json"
    # one thread: the smoke run checks the code paths and the JSON, not speed, and a single
    # thread is far less sensitive to other processes on the shared cores
    cmd = [sys.executable, str(REPO / "benchmarks" / "model_speed.py"), "--quick", "--threads", "1",
           "--json", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "== targets" in proc.stdout
    res = json.loads(out.read_text())
    assert {"machine", "main", "grid", "growth", "flops", "matmul_gflops", "bf16",
            "targets"} <= set(res)
    assert res["quick"] is True
    for key in ("torch", "threads", "cpu", "cpu_capability"):
        assert key in res["machine"]
    row_keys = {"channels", "patches", "batch", "model", "mode", "median_s", "windows_per_s",
                "us_per_token", "peak_rss_mb"}
    for row in res["main"] + res["grid"]:
        assert row_keys <= set(row)
        assert row["median_s"] > 0 and row["windows_per_s"] > 0
    assert {(r["model"], r["mode"]) for r in res["main"]} == {
        ("fast", "train"), ("naive", "train"), ("fast", "infer"), ("naive", "infer")}
    for row in res["main"]:
        assert {"gflops", "pct_of_mm_mkl"} <= set(row)
    assert all(v["forward"] > 0 and v["train_step"] > v["forward"] for v in res["flops"].values())
    assert any("torch.mm" in k for k in res["matmul_gflops"])
    for name in ("fast", "naive"):
        b = res["bf16"][name]
        assert {"infer_speedup", "train_speedup", "output_rel_rms_err", "grad_rel_l2_err"} <= set(b)
        assert b["output_rel_rms_err"] < 0.1
    assert {"train_speedup", "infer_speedup", "train_memory_fraction_of_naive",
            "fast_per_token_growth_max", "bf16_fast_infer_speedup"} <= set(res["targets"])
