"""Inference speed of an ONNX export under onnxruntime against eager PyTorch, in one run.

    .venv/bin/python benchmarks/export_speed.py             # released size, 19 ch x 4 s, batch 16
    .venv/bin/python benchmarks/export_speed.py --quick     # smoke mode: tiny model, few repeats
    .venv/bin/python benchmarks/export_speed.py --json out.json

The model is a ``CSBrainForClassification`` (released configuration, random weights: speed does
not depend on them) on the 19-channel ``TUEG`` montage. It is exported with
:func:`csbrain.models.export.export_model` (which checks parity with eager PyTorch), then both
run the same batches with the same number of threads: eager = the package's default eager CPU
path (fused kernels) under ``torch.inference_mode``; onnxruntime = ``InferenceSession`` on the
CPU provider. After one warm-up call each, the two alternate for ``--reps`` repeats; medians are
reported and the ratio eager / onnxruntime (> 1: onnxruntime faster). The machine is shared:
compare the ratio from one run, not times across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from csbrain.config import CSBrainConfig  # noqa: E402
from csbrain.models import CSBrainForClassification  # noqa: E402
from csbrain.models.export import export_model  # noqa: E402


def timed(fn, x) -> float:
    start = time.perf_counter()
    fn(x)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny model, 3 repeats")
    ap.add_argument("--threads", type=int, default=None, help="threads of both (default: torch's)")
    ap.add_argument("--reps", type=int, default=None, help="timed repeats (default 10, quick 3)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seconds", type=int, default=4, help="window length (1 s patches)")
    ap.add_argument("--json", metavar="OUT", help="write the results as JSON")
    args = ap.parse_args(argv)
    import onnxruntime as ort

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    reps = args.reps or (3 if args.quick else 10)
    cfg = CSBrainConfig.from_preset("tiny" if args.quick else "released")
    torch.manual_seed(0)
    n_times = args.seconds * cfg.patch_size
    model = CSBrainForClassification("TUEG", cfg, n_outputs=4, n_times=n_times).eval()
    x = torch.randn(args.batch, model.backbone.n_chans, n_times)
    with tempfile.TemporaryDirectory() as tmp:
        res = export_model(model, Path(tmp) / "model.onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(res.path), options,
                                       providers=["CPUExecutionProvider"])

        def eager(batch: torch.Tensor) -> None:
            with torch.inference_mode():
                model(batch)

        feed = x.numpy()

        def onnx(batch: np.ndarray) -> None:
            session.run(None, {"eeg": batch})

        timed(eager, x), timed(onnx, feed)                        # warm-up
        times: dict[str, list[float]] = {"eager": [], "onnxruntime": []}
        for _ in range(reps):
            times["eager"].append(timed(eager, x))
            times["onnxruntime"].append(timed(onnx, feed))
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {"quick": args.quick, "threads": threads, "torch": torch.__version__,
           "onnxruntime": ort.__version__, "config": cfg.to_dict(), "batch": args.batch,
           "input": [args.batch, model.backbone.n_chans, n_times], "reps": reps,
           "parity_max_abs_diff": res.max_abs_diff, "median_s": med, "times_s": times,
           "windows_per_s": {k: args.batch / v for k, v in med.items()},
           "eager_over_onnxruntime": med["eager"] / med["onnxruntime"],
           "loadavg": os.getloadavg()}
    print(f"input {tuple(out['input'])}, {threads} threads, {reps} repeats, "
          f"load average {out['loadavg'][0]:.2f}")
    for k in ("eager", "onnxruntime"):
        print(f"{k:12s} median {med[k] * 1e3:8.1f} ms/batch  "
              f"{out['windows_per_s'][k]:8.1f} windows/s")
    print(f"eager / onnxruntime time ratio: {out['eager_over_onnxruntime']:.2f} "
          f"(parity max |diff| {res.max_abs_diff:.2g})")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
