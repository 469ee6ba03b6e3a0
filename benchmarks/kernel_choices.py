"""The measurements behind the choices of ``csbrain/models/fused_cpu.py`` and ``cpu_ops.py``.

    .venv/bin/python benchmarks/kernel_choices.py      # about 2 minutes on 2 cores

Medians of interleaved repeats, plain ``time.perf_counter``; shapes are those of the released
12-layer model at 19 channels x 30 patches, batch 32. Prints, for each choice, the time of the
alternative over the time of the choice (> 1: the choice is faster):

- dropout masks from 16 random bits per element vs ``bernoulli_``;
- softmax over short rows (inter-window attention, length = number of windows) as a composite
  of vectorised ops vs ``torch.softmax``;
- the short inter-window attention as bmm + softmax vs ``F.scaled_dot_product_attention``;
- oneDNN linear (``torch.ops.mkldnn._linear_pointwise``) vs ``torch.mm`` (MKL);
- a training step with chunks of ``fused_cpu.CHUNK_TOKENS`` tokens vs one chunk.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from model_speed import Pair, interleaved  # noqa: E402

from csbrain import CSBrainConfig  # noqa: E402
from csbrain.models import cpu_ops, fused_cpu  # noqa: E402


def medians(fns: dict, reps: int) -> dict:
    """Median seconds per call, after one warm-up call each, repeats interleaved."""
    for fn in fns.values():
        fn()
    return {k: statistics.median(v) for k, v in interleaved(fns, reps).items()}


def report(name: str, choice: str, alternative: str, m: dict) -> float:
    ratio = m[alternative] / m[choice]
    print(f"{name}: {choice} {1e3 * m[choice]:.1f} ms, {alternative} {1e3 * m[alternative]:.1f} ms"
          f" -> {ratio:.2f}x")
    return ratio


def main() -> dict:
    cfg = CSBrainConfig()
    B, C, P, D, H = 32, 19, 30, cfg.d_model, cfg.n_heads
    rows, cpu = 8192, torch.device("cpu")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    out = {}
    shape = (rows, cfg.dim_feedforward)
    out["dropout mask"] = report("dropout mask", "drop_mask", "bernoulli_", medians({
        "drop_mask": lambda: cpu_ops.drop_mask(shape, cfg.dropout, cpu),
        "bernoulli_": lambda: torch.empty(shape).bernoulli_(1 - cfg.dropout)}, 20))
    n_win = P // cfg.window_size                       # inter-window attention length
    q = torch.randn(B * C * cfg.window_size, H, n_win, D // H)
    s = torch.randn(B * C * cfg.window_size * H, n_win, n_win)
    out["short softmax"] = report("short-row softmax", "composite", "torch.softmax", medians({
        "composite": lambda: cpu_ops.softmax(s),
        "torch.softmax": lambda: torch.softmax(s, -1)}, 20))

    def bmm_attention():
        sc = torch.matmul(q, q.transpose(-1, -2)) * (D // H) ** -0.5
        return torch.matmul(cpu_ops.softmax(sc), q)

    out["window attention"] = report("inter-window attention", "bmm + softmax", "SDPA", medians({
        "bmm + softmax": bmm_attention,
        "SDPA": lambda: F.scaled_dot_product_attention(q, q, q)}, 20))
    lp = getattr(torch.ops.mkldnn, "_linear_pointwise", None)
    if lp is not None:
        a, w = torch.randn(B * C * P, D), torch.randn(cfg.dim_feedforward, D)
        out["linear"] = report("linear (B*C*P, D) x (D, F)", "oneDNN", "torch.mm", medians({
            "oneDNN": lambda: lp(a, w, None, "none", [], ""),
            "torch.mm": lambda: torch.mm(a, w.t())}, 10))
    pair, default = Pair(C, P, B, cfg), fused_cpu.CHUNK_TOKENS

    def step(chunk):
        def run():
            fused_cpu.CHUNK_TOKENS = chunk
            pair.train_step("fast")
        return run

    try:
        out["chunking"] = report("training step", f"chunks of {default}", "one chunk", medians({
            f"chunks of {default}": step(default), "one chunk": step(10 ** 12)}, 3))
    finally:
        fused_cpu.CHUNK_TOKENS = default
    return out


if __name__ == "__main__":
    main()
