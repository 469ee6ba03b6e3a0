"""Streaming ``csbrain predict`` on day-long recordings: speed, peak memory and where time goes.

Writes (and caches) a 19-channel 256 Hz EDF of ``--hours`` hours (and a 1-h one, to compare
memory) with a realistic EEG spectrum: 1/f ("pink") background plus a waxing and waning 10 Hz
alpha rhythm, per-channel mixtures, ~30 µV RMS. Then, each configuration in its own subprocess
(so peak RSS is that run's), times :func:`csbrain.eval.predict.predict` end to end with a
released-size (12-layer) backbone, 19x30-s windows and the ``mean`` head on ``--threads``
threads, fp32 and bf16 (bf16 is reported as not supported where the CPU lacks native bfloat16),
and the released ``flatten`` head separately. Reports hours of EEG per minute, x real time,
peak RSS, and the time spent reading, filtering/resampling and in the model (the preparation
runs in a background thread, so these overlap; they are per-stage thread times).

Targets (2-core CPU): >= 250x real time in fp32 (24 h in < 6 min), peak RSS <= 1.5 GB, the same
RSS for 1 h and 24 h (+-10 %).

    python benchmarks/long_recording.py                 # 24 h and 1 h, mean head fp32/bf16, flatten
    python benchmarks/long_recording.py --hours 1       # 1 h only
    python benchmarks/long_recording.py --quick         # a few minutes of EEG, 2-layer model
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHANNELS = ["Fp1", "Fp2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2", "F7", "F8", "T7", "T8",
            "P7", "P8", "Fz", "Cz", "Pz"]
SFREQ = 256
TARGET_X, TARGET_RSS_MB, TARGET_RSS_SPREAD = 250.0, 1536.0, 0.10


# ---------------------------------------------------------------------------- the recording
def _edf_header(n_records: int, phys: float = 500.0) -> bytes:
    """EDF header for 1-s records of int16 samples (the EDF spec's fixed-width ASCII fields).

    Hand-written because edfio / mne.export need the whole signal in memory (3.4 GB of float64
    for 24 h x 19 channels); the data records are then appended block by block.
    """
    ns = len(CHANNELS)

    def f(v, n):
        return str(v)[:n].ljust(n).encode("ascii")

    head = (f("0", 8) + f("X X X X", 80) + f("Startdate 01-JAN-2020 X X X", 80)
            + f("01.01.20", 8) + f("00.00.00", 8) + f(256 * (ns + 1), 8) + f("", 44)
            + f(n_records, 8) + f(1, 8) + f(ns, 4))
    for field, n in (("label", 16), ("trans", 80), ("dim", 8), ("pmin", 8), ("pmax", 8),
                     ("dmin", 8), ("dmax", 8), ("pre", 80), ("ns", 8), ("res", 32)):
        vals = {"label": [f"EEG {c}" for c in CHANNELS], "trans": ["AgAgCl"] * ns,
                "dim": ["uV"] * ns, "pmin": [-phys] * ns, "pmax": [phys] * ns,
                "dmin": [-32768] * ns, "dmax": [32767] * ns, "pre": ["HP:0.1Hz"] * ns,
                "ns": [SFREQ] * ns, "res": [""] * ns}[field]
        head += b"".join(f(v, n) for v in vals)
    return head


def write_recording(path: Path, hours: float, seed: int = 0) -> Path:
    """19-channel 256 Hz EDF of ``hours``: pink background + alpha bursts (block by block)."""
    from scipy.signal import lfilter, lfilter_zi

    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    # Kellet's pink-noise filter: 1/f power from white noise, state carried across blocks
    b = [0.049922035, -0.095993537, 0.050612699, -0.004408786]
    a = [1.0, -2.494956002, 2.017265875, -0.522189400]
    ns = len(CHANNELS)
    zi = np.outer(np.ones(ns), lfilter_zi(b, a))
    mix = np.eye(ns) * 0.7 + 0.3 / ns                 # volume conduction between channels
    alpha_gain = np.where(np.arange(ns) >= 6, 1.0, 0.4)  # posterior channels carry more alpha
    n_records = int(round(hours * 3600))
    block = 600                                        # seconds per written block
    tmp = path.with_suffix(".part")
    with open(tmp, "wb") as fh:
        fh.write(_edf_header(n_records))
        for s0 in range(0, n_records, block):
            n = min(block, n_records - s0) * SFREQ
            white = rng.standard_normal((ns, n))
            pink, zi = lfilter(b, a, white, axis=1, zi=zi)
            t = (s0 * SFREQ + np.arange(n)) / SFREQ
            envelope = 0.5 + 0.5 * np.sin(2 * np.pi * t / 7.3) ** 2
            alpha = np.sin(2 * np.pi * 10.2 * t) * envelope
            uv = mix @ pink * 25.0 + np.outer(alpha_gain, alpha) * 20.0
            digital = np.clip(np.round(uv / 500.0 * 32767), -32768, 32767).astype("<i2")
            # records of 1 s: (record, channel, sample)
            recs = digital.reshape(ns, -1, SFREQ).transpose(1, 0, 2)
            fh.write(recs.tobytes())
    os.replace(tmp, path)
    return path


# ---------------------------------------------------------------------------- one configuration
def _model_dir(root: Path, head: str, quick: bool) -> Path:
    import dataclasses

    from csbrain import CSBrainConfig
    from csbrain.data.prepconfig import PrepConfig
    from csbrain.models import CSBrainForClassification

    path = root / f"model_{head}{'_quick' if quick else ''}"
    if (path / "config.json").exists():
        return path
    cfg = CSBrainConfig.from_preset("released", **({"n_layers": 2} if quick else {}))
    model = CSBrainForClassification(CHANNELS, cfg, n_outputs=2, head=head, n_times=30 * 200)
    prep = PrepConfig()
    prep = dataclasses.replace(
        prep, channels=dataclasses.replace(prep.channels, pick=tuple(CHANNELS)),
        windows=dataclasses.replace(prep.windows, length_s=30, stride_s=30))
    model.save_pretrained(path, extra={"preprocessing": dataclasses.asdict(prep),
                                       "label_names": ["a", "b"], "task": "multiclass"},
                          model_card=False)
    return path


def child(spec: dict) -> dict:
    """Run one configuration (in a fresh process); return its figures."""
    import torch

    torch.set_num_threads(spec["threads"])
    import mne

    import csbrain.data.streaming as streaming
    from csbrain.eval.config import InferenceConfig
    from csbrain.eval.predict import predict
    from csbrain.eval.streaming import bf16_support

    if spec["bf16"]:
        why = bf16_support("cpu")
        if why:
            return {"skipped": f"not supported on this CPU ({why})"}
    stage = {"read": 0.0, "filter_resample": 0.0, "model": 0.0}

    def timed(key, fn):
        def wrapper(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                stage[key] += time.perf_counter() - t
        return wrapper

    mne.io.BaseRaw.get_data = timed("read", mne.io.BaseRaw.get_data)
    streaming.filter_array = timed("filter_resample", streaming.filter_array)
    streaming.resample_array = timed("filter_resample", streaming.resample_array)
    model_dir = Path(spec["model"])
    from csbrain.models import hub
    real_load = hub.load_model

    params = []

    def load(*a, **k):
        m = real_load(*a, **k)
        m.forward = timed("model", m.forward)
        params.append(sum(p.numel() for p in m.parameters()))
        return m

    import csbrain.eval.predict as pm
    pm.load_model = load
    rss0 = _vm_hwm_mb()
    t = time.perf_counter()
    rows = predict([spec["edf"]], model_dir, spec["out"],
                   InferenceConfig(device="cpu", progress=False, batch_size=spec["batch"]),
                   bf16=spec["bf16"], chunk_s=spec["chunk_s"])
    wall = time.perf_counter() - t
    hours = spec["hours"]
    return {"windows": len(rows), "wall_s": round(wall, 2),
            "hours_per_min": round(hours / (wall / 60), 3),
            "x_realtime": round(hours * 3600 / wall, 1),
            "peak_rss_before_predict_mb": round(rss0, 1),
            "stage_s": {k: round(v, 2) for k, v in stage.items()},
            "params_m": round(params[0] / 1e6, 2), "weights_mb": round(params[0] * 4 / 2**20, 1),
            "peak_rss_mb": round(_vm_hwm_mb(), 1)}


def _vm_hwm_mb() -> float:
    """This process's peak resident memory: ``VmHWM`` (reset at exec, unlike ``ru_maxrss``,
    which Linux carries over from the parent process), else ``ru_maxrss``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_subprocess(spec: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)],
                          capture_output=True, text=True)
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def flops_per_window(model_dir: Path) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from csbrain.models import load_model

    model = load_model(model_dir).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(torch.zeros(1, len(CHANNELS), 30, 200))
    return fc.get_total_flops()


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hours", type=float, default=24.0, help="long recording, hours (24)")
    p.add_argument("--quick", action="store_true", help="a few minutes of EEG, 2-layer model")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--chunk-s", type=float, default=600.0)
    p.add_argument("--no-flatten", action="store_true", help="skip the flatten head")
    p.add_argument("--dir", default=str(Path(tempfile.gettempdir()) / "csbrain_benchmark"),
                   help="cache folder for the EDFs and model folders")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return {}
    root = Path(args.dir)
    root.mkdir(parents=True, exist_ok=True)
    lengths = [0.05, 0.1] if args.quick else sorted({1.0, args.hours})
    heads = ("mean",) if args.no_flatten else ("mean", "flatten")
    # models first, in a child process: the parent's memory must not inflate the children's
    subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, %r); import "
                    "long_recording as b; from pathlib import Path; [b._model_dir(Path(%r), h, "
                    "%r) for h in %r]" % (str(Path(__file__).parent), str(root), args.quick,
                                          heads)], check=True)
    res = {"quick": args.quick, "threads": args.threads, "lengths_h": lengths, "runs": []}
    import torch
    res["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    configs = [("mean", False), ("mean", True)] + ([] if args.no_flatten else [("flatten", False)])
    for head, bf16 in configs:
        model = _model_dir(root, head, args.quick)
        for hours in lengths if head == "mean" else lengths[:1]:
            edf = write_recording(root / f"eeg_{hours:g}h.edf", hours)
            spec = {"edf": str(edf), "model": str(model), "out": str(root / "pred.csv"),
                    "threads": args.threads, "batch": args.batch, "bf16": bf16,
                    "chunk_s": args.chunk_s if not args.quick else 60.0, "hours": hours}
            r = {"head": head, "dtype": "bf16" if bf16 else "fp32", "hours": hours,
                 **in_subprocess(spec)}
            res["runs"].append(r)
            print(json.dumps(r), flush=True)
    res["flops_per_window_mean"] = flops_per_window(_model_dir(root, "mean", args.quick))
    fp32 = [r for r in res["runs"] if r["head"] == "mean" and r["dtype"] == "fp32"
            and "wall_s" in r]
    if fp32:
        long = max(fp32, key=lambda r: r["hours"])
        gflops = res["flops_per_window_mean"] * long["windows"] / long["stage_s"]["model"] / 1e9
        res["model_gflops_per_s"] = round(gflops, 1)
        res["x_realtime_bound_by_model"] = round(
            long["hours"] * 3600 / long["stage_s"]["model"], 1)
        rss = [r["peak_rss_mb"] for r in fp32]
        res["targets"] = {
            "x_realtime_fp32": [long["x_realtime"], TARGET_X, long["x_realtime"] >= TARGET_X],
            "peak_rss_mb": [max(rss), TARGET_RSS_MB, max(rss) <= TARGET_RSS_MB],
            "rss_spread": [round(max(rss) / min(rss) - 1, 3), TARGET_RSS_SPREAD,
                           max(rss) / min(rss) - 1 <= TARGET_RSS_SPREAD]}
    print("== targets")
    for k, v in res.get("targets", {}).items():
        print(f"{k}: {v[0]} (target {v[1]}) {'met' if v[2] else 'NOT met'}")
    print(f"forward GFLOP per 19x30 window: {res['flops_per_window_mean'] / 1e9:.2f}; "
          f"achieved {res.get('model_gflops_per_s')} GFLOP/s in the model")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
