"""CSBrain speed benchmark: the package model against the naive reference, in one run.

    .venv/bin/python benchmarks/model_speed.py            # full table (~8 min on 2 busy cores)
    .venv/bin/python benchmarks/model_speed.py --quick    # smoke mode (< 60 s, 2-layer model)
    .venv/bin/python benchmarks/model_speed.py --json out.json

What is measured (plain PyTorch timing, ``time.perf_counter`` around whole calls):

- training step = forward + backward + ``AdamW.step`` of ``CSBrainForPretraining`` with a 50%
  patch mask and the MSE on masked patches; inference = forward of the same model under
  ``torch.inference_mode`` (eval). Each configuration runs in a fresh process (the allocator
  state left by earlier configurations changes timings by up to 1.5x on this machine):
  inference first, then training; in each phase the two models alternate (fast, naive, fast,
  ...) after one warm-up call each; medians are reported (all times in the JSON), ratios are
  naive/fast of medians from the same process;
- peak memory = the peak resident set size (``VmHWM``) reached during the warm-up call minus the
  resident size just before it, after ``malloc_trim(0)`` and a reset of ``VmHWM``
  (``/proc/self/clear_refs``). It is what the OS sees: activations, gradients, temporaries and
  allocator slack; the AdamW state (2 x 35 MB, created on the first step) is included;
- FLOPs per window from ``torch.utils.flop_counter.FlopCounterMode`` on the naive reference
  (the fast model computes the same function; its oneDNN calls are invisible to the counter),
  counted with 1 and 2 layers and extrapolated linearly to 12;
  achieved GFLOP/s = FLOPs x windows/s, next to a same-run fp32 matmul of the model's shape
  through ``torch.mm`` (MKL, what ``nn.Linear`` uses) and through oneDNN (what the fast model
  uses for its linear layers);
- bf16: ``torch.autocast("cpu", torch.bfloat16)`` speed-up of each model over its own fp32 run,
  the output error against fp32 and the gradient error (eval mode, dropout off).

The machine is shared: timings are noisy, compare ratios from one run. ``--omp-passive`` sets
``OMP_WAIT_POLICY=PASSIVE`` (much more robust when other processes use the cores; ~20% slower on
an idle machine).
"""

from __future__ import annotations

import os
import sys

if "--omp-passive" in sys.argv:               # must happen before OpenMP starts (torch import)
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

import argparse  # noqa: E402
import ctypes  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from naive_csbrain import naive_from_fast  # noqa: E402

from csbrain import CSBrainConfig, CSBrainForPretraining, Montage, units  # noqa: E402

S = units.PATCH_SIZE  # samples per patch


# ----------------------------------------------------------------------------- machine
def machine_info() -> dict:
    cpu = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
        for key in ("model name", "cpu family", "model"):
            m = re.search(rf"^{key}\s*:\s*(.*)$", text, re.M)
            cpu[key] = m.group(1).strip() if m else "?"
        flags = set(re.search(r"^flags\s*:\s*(.*)$", text, re.M).group(1).split())
        cpu["flags"] = sorted(f for f in flags if f.startswith(("avx512", "amx", "avx2", "fma")))
    except (OSError, AttributeError):
        pass
    return {
        "platform": platform.platform(), "python": platform.python_version(),
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "cores": os.cpu_count(), "cpu": cpu,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mkldnn": torch.backends.mkldnn.is_available(), "mkl": torch.backends.mkl.is_available(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(default: active)"),
        "loadavg_start": os.getloadavg(), "gpu": torch.cuda.is_available(),
    }


# ----------------------------------------------------------------------------- memory
_LIBC = ctypes.CDLL("libc.so.6") if sys.platform.startswith("linux") else None


def _status_mb(key: str) -> float:
    return int(re.search(rf"{key}:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024


def peak_rss_of(fn) -> float | None:
    """Peak RSS increase (MB) while ``fn()`` runs, see the module docstring."""
    try:
        _LIBC.malloc_trim(0)
        Path("/proc/self/clear_refs").write_text("5")
        before = _status_mb("VmRSS")
        fn()
        return _status_mb("VmHWM") - before
    except (OSError, AttributeError):
        fn()
        return None


# ----------------------------------------------------------------------------- models
#: released montages used where the channel count has one; other counts draw 10-05 names
PRESET_FOR_CHANNELS = {19: "TUEG", 64: "BCIC2020-3"}


def montage_for(n_chans: int) -> Montage:
    if n_chans in PRESET_FOR_CHANNELS:
        return Montage.from_preset(PRESET_FOR_CHANNELS[n_chans])
    from csbrain.montage import _tables  # every 10-05 name the montage rules know
    names = sorted(_tables()[1])
    random.Random(0).shuffle(names)
    return Montage.from_names(names[:n_chans])


class Pair:
    """The fast model and the naive reference with the same weights, inputs and optimizers."""

    def __init__(self, n_chans: int, n_patches: int, batch: int, cfg: CSBrainConfig, seed=0):
        torch.manual_seed(seed)
        self.fast = CSBrainForPretraining(montage_for(n_chans), cfg)
        self.naive = naive_from_fast(self.fast)
        self.models = {"fast": self.fast, "naive": self.naive}
        self.opt = {k: torch.optim.AdamW(m.parameters(), lr=1e-4) for k, m in self.models.items()}
        self.x = torch.randn(batch, n_chans, n_patches, S)
        self.mask = (torch.rand(batch, n_chans, n_patches) < 0.5).long()   # 50% masked patches
        self.target = self.x[:, list(self.fast.backbone.channel_order)]
        self.batch, self.tokens = batch, batch * n_chans * n_patches

    def train_step(self, name: str, dtype=None):
        model, opt = self.models[name], self.opt[name]
        model.train()
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            out = model(self.x, self.mask)
        m = self.mask.unsqueeze(-1).to(out.dtype)
        loss = ((out.float() - self.target) ** 2 * m).sum() / (m.sum() * S)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def infer(self, name: str, dtype=None):
        model = self.models[name].eval()
        with torch.inference_mode(), torch.autocast("cpu", dtype=dtype or torch.bfloat16,
                                                    enabled=dtype is not None):
            return model(self.x)


def interleaved(fns: dict, reps: int) -> dict:
    times = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return times


def run_config(n_chans, n_patches, batch, cfg, reps) -> list[dict]:
    """Inference first, then training (a training step leaves a large heap behind that would
    flatter the following inference calls); in each phase fast and naive alternate."""
    pair = Pair(n_chans, n_patches, batch, cfg)
    rows = []
    for mode in ("infer", "train"):
        call = pair.infer if mode == "infer" else pair.train_step
        fns = {model: (lambda m=model: call(m)) for model in ("fast", "naive")}
        memory = {k: peak_rss_of(fn) for k, fn in fns.items()}          # the warm-up calls
        for model, ts in interleaved(fns, reps).items():
            med = statistics.median(ts)
            rows.append({"channels": n_chans, "patches": n_patches, "batch": batch,
                         "model": model, "mode": mode, "median_s": med, "min_s": min(ts),
                         "times_s": ts, "windows_per_s": batch / med,
                         "ms_per_window": 1e3 * med / batch,
                         "us_per_token": 1e6 * med / pair.tokens,
                         "peak_rss_mb": memory[model]})
    return rows


def in_subprocess(kind: str, args: argparse.Namespace, **spec):
    """Run one measurement in a fresh process (clean allocator state, honest peak RSS); in
    ``--quick`` mode in this process (a smoke test of the code paths, not a measurement)."""
    if args.quick:
        return worker({"kind": kind, **spec}, emit=False)
    cmd = [sys.executable, __file__, "--worker", json.dumps({"kind": kind, **spec})]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"worker {spec} failed:\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def worker(spec: dict, emit: bool = True):
    cfg = CSBrainConfig(n_layers=2) if spec["quick"] else CSBrainConfig()
    if spec["kind"] == "config":
        out = run_config(spec["C"], spec["P"], spec["B"], cfg, spec["reps"])
    else:
        out = bf16_report(spec["C"], spec["P"], spec["B"], cfg, spec["reps"])
    if emit:
        print("RESULT " + json.dumps(out))
    return out


# ----------------------------------------------------------------------------- FLOPs, matmul
def flops_per_window(n_chans, n_patches, cfg) -> dict:
    """FlopCounterMode on the naive reference (batch 1), with 1 and 2 layers, extrapolated
    linearly to ``cfg.n_layers`` (every layer costs the same; saves minutes of counting)."""
    counts = []
    for layers in (1, 2):
        pair = Pair(n_chans, n_patches, 1, cfg.replace(n_layers=layers))
        model = pair.naive.train()                             # standard aten ops, counted
        with FlopCounterMode(display=False) as fwd:
            out = model(pair.x, pair.mask)
        with FlopCounterMode(display=False) as bwd:
            out.square().mean().backward()
        counts.append((fwd.get_total_flops(), fwd.get_total_flops() + bwd.get_total_flops()))
    (f1, t1), (f2, t2) = counts
    n = cfg.n_layers - 1
    return {"forward": f1 + n * (f2 - f1), "train_step": t1 + n * (t2 - t1)}


def matmul_reference(rows: int, cfg: CSBrainConfig, reps: int) -> dict:
    """fp32 GFLOP/s of the model's feed-forward matmul shapes, ``(rows, D) x (D, F)`` and
    ``(rows, F) x (F, D)``, through MKL and oneDNN."""
    out = {}
    lp = getattr(torch.ops.mkldnn, "_linear_pointwise", None)
    d, f = cfg.d_model, cfg.dim_feedforward
    for k, n in ((d, f), (f, d)):
        a, w = torch.randn(rows, k), torch.randn(n, k)
        fns = {"torch.mm (MKL)": lambda: torch.mm(a, w.t())}
        if lp is not None:
            fns["oneDNN linear"] = lambda: lp(a, w, None, "none", [], "")
        for fn in fns.values():
            fn()
        for name, ts in interleaved(fns, reps).items():
            out[f"({rows},{k})x({k},{n}) {name}"] = 2 * rows * k * n / statistics.median(ts) / 1e9
    return out


# ----------------------------------------------------------------------------- bf16
def bf16_report(n_chans, n_patches, batch, cfg, reps) -> dict:
    pair = Pair(n_chans, n_patches, batch, cfg)
    res = {}
    for name in ("fast", "naive"):
        ref = pair.infer(name).float()
        out = pair.infer(name, torch.bfloat16).float()
        err = out - ref
        model = pair.models[name].eval()                  # gradient error, dropout off

        def grads(dtype):
            model.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype is not None):
                y = model(pair.x, pair.mask)
            ((y.float() - pair.target) ** 2).mean().backward()
            return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])

        g32, g16 = grads(None), grads(torch.bfloat16)
        fns = {("fp32", "train"): lambda n=name: pair.train_step(n),
               ("bf16", "train"): lambda n=name: pair.train_step(n, torch.bfloat16),
               ("fp32", "infer"): lambda n=name: pair.infer(n),
               ("bf16", "infer"): lambda n=name: pair.infer(n, torch.bfloat16)}
        for fn in fns.values():
            fn()
        med = {k: statistics.median(v) for k, v in interleaved(fns, reps).items()}
        res[name] = {
            "infer_speedup": med[("fp32", "infer")] / med[("bf16", "infer")],
            "train_speedup": med[("fp32", "train")] / med[("bf16", "train")],
            "infer_windows_per_s_bf16": batch / med[("bf16", "infer")],
            "train_windows_per_s_bf16": batch / med[("bf16", "train")],
            "output_max_abs_err": err.abs().max().item(),
            "output_max_abs": ref.abs().max().item(),
            "output_rel_rms_err": (err.pow(2).mean().sqrt() / ref.pow(2).mean().sqrt()).item(),
            "grad_rel_l2_err": ((g16 - g32).norm() / g32.norm()).item(),
        }
    return res


# ----------------------------------------------------------------------------- report
def table(rows, cols, title):
    lines = [title, "  ".join(f"{c[0]:>{c[2]}}" for c in cols)]
    for r in rows:
        lines.append("  ".join(f"{c[1](r):>{c[2]}}" for c in cols))
    return "\n".join(lines)


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def pair_rows(rows):
    """One line per (shape, batch, mode): fast, naive, ratio."""
    out = {}
    for r in rows:
        key = (r["channels"], r["patches"], r["batch"], r["mode"])
        out.setdefault(key, {})[r["model"]] = r
    return [(k, v["fast"], v["naive"]) for k, v in out.items()]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke mode: 2-layer model, tiny shapes")
    ap.add_argument("--json", metavar="OUT", help="write all results as JSON")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--reps", type=int, default=None, help="timed repeats per configuration")
    ap.add_argument("--omp-passive", action="store_true", help="OMP_WAIT_POLICY=PASSIVE")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        return worker(json.loads(args.worker))
    t_start = time.perf_counter()
    quick = args.quick
    cfg = CSBrainConfig(n_layers=2) if quick else CSBrainConfig()
    reps = args.reps or (1 if quick else 3)
    grid_reps = args.reps or (1 if quick else 2)
    main_batches = (2,) if quick else (8, 32)
    grid_c, grid_p = ((19, 64), (10, 30)) if quick else ((19, 64, 128), (10, 30, 120))
    token_budget = 600 if quick else 4 * 19 * 30        # grid batch: about this many tokens
    bf16_batch = 2 if quick else 8

    res = {"machine": machine_info(), "quick": quick, "config": cfg.to_dict(),
           "threads": torch.get_num_threads(), "notes": [
               "shared machine: timings are noisy; compare ratios from the same run",
               "no GPU in this environment" if not torch.cuda.is_available() else "GPU present"]}
    print(json.dumps(res["machine"], indent=1))

    common = {"quick": quick}
    res["main"] = [r for b in main_batches
                   for r in in_subprocess("config", args, C=19, P=30, B=b, reps=reps, **common)]
    res["flops"] = {f"{c}x{p}": flops_per_window(c, p, cfg)
                    for c in grid_c for p in grid_p}
    fl = res["flops"]["19x30"]
    ref_rows = max(main_batches) * 19 * 30
    res["matmul_gflops"] = matmul_reference(ref_rows, cfg, reps=5)
    shape = f"({ref_rows},{cfg.d_model})x({cfg.d_model},{cfg.dim_feedforward})"
    mm_mkl = res["matmul_gflops"][f"{shape} torch.mm (MKL)"]
    mm_dnn = res["matmul_gflops"].get(f"{shape} oneDNN linear")
    for r in res["main"]:
        f = fl["train_step" if r["mode"] == "train" else "forward"]
        r["gflops"] = f * r["windows_per_s"] / 1e9
        r["pct_of_mm_mkl"] = 100 * r["gflops"] / mm_mkl
        r["pct_of_mm_onednn"] = 100 * r["gflops"] / mm_dnn if mm_dnn else None

    grid = []
    for c in grid_c:
        for p in grid_p:
            batch = max(1, round(token_budget / (c * p)))
            big = batch * c * p > 3 * token_budget          # 64 x 120, 128 x 120: one timed rep
            grid += in_subprocess("config", args, C=c, P=p, B=batch,
                                  reps=1 if big and not args.reps else grid_reps, **common)
    res["grid"] = grid
    growth = []
    for c in grid_c:
        for model in ("fast", "naive"):
            for mode in ("train", "infer"):
                cost = {r["patches"]: r["us_per_token"] for r in grid
                        if r["channels"] == c and r["model"] == model and r["mode"] == mode}
                lo, hi = min(grid_p), max(grid_p)
                mid = 30 if 30 in cost and hi != 30 else lo
                growth.append({"channels": c, "model": model, "mode": mode,
                               f"per_token_growth_{mid}_to_{hi}": cost[hi] / cost[mid]})
    res["growth"] = growth
    res["bf16"] = in_subprocess("bf16", args, C=19, P=30, B=bf16_batch, reps=reps, **common)

    # ----- targets (main config: 19 x 30, largest batch)
    b = max(main_batches)
    rows = {(r["model"], r["mode"]): r for r in res["main"] if r["batch"] == b}

    def ratio(mode):
        return rows[("naive", mode)]["median_s"] / rows[("fast", mode)]["median_s"]

    mem_f, mem_n = rows[("fast", "train")]["peak_rss_mb"], rows[("naive", "train")]["peak_rss_mb"]
    gkey = next(k for k in growth[0] if k.startswith("per_token_growth"))
    res["targets"] = {
        "batch": b,
        "train_speedup": ratio("train"), "infer_speedup": ratio("infer"),
        "train_pct_of_mm_mkl": rows[("fast", "train")]["pct_of_mm_mkl"],
        "train_pct_of_mm_onednn": rows[("fast", "train")]["pct_of_mm_onednn"],
        "train_memory_fraction_of_naive": (mem_f / mem_n) if mem_f and mem_n else None,
        "fast_per_token_growth_max": max(g[gkey] for g in growth if g["model"] == "fast"),
        "bf16_fast_infer_speedup": res["bf16"]["fast"]["infer_speedup"],
        "bf16_fast_train_speedup": res["bf16"]["fast"]["train_speedup"],
    }
    res["machine"]["loadavg_end"] = os.getloadavg()
    res["elapsed_s"] = time.perf_counter() - t_start
    report(res, gkey)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return res


def report(res, gkey):
    cols = [("C", lambda r: r[0][0], 4), ("P", lambda r: r[0][1], 4), ("B", lambda r: r[0][2], 3),
            ("mode", lambda r: r[0][3], 6),
            ("fast win/s", lambda r: f"{r[1]['windows_per_s']:.2f}", 10),
            ("naive win/s", lambda r: f"{r[2]['windows_per_s']:.2f}", 11),
            ("speedup", lambda r: f"{r[2]['median_s'] / r[1]['median_s']:.2f}x", 8),
            ("fast us/tok", lambda r: f"{r[1]['us_per_token']:.1f}", 11),
            ("naive us/tok", lambda r: f"{r[2]['us_per_token']:.1f}", 12),
            ("fast MB", lambda r: fmt(r[1]["peak_rss_mb"], ".0f"), 8),
            ("naive MB", lambda r: fmt(r[2]["peak_rss_mb"], ".0f"), 8),
            ("mem ratio", lambda r: fmt(r[1]["peak_rss_mb"] and r[2]["peak_rss_mb"]
                                        and r[1]["peak_rss_mb"] / r[2]["peak_rss_mb"], ".2f"), 9)]
    print()
    print(table(pair_rows(res["main"]), cols, "== 19 channels x 30 patches (fp32)"))
    gcols = cols[:4] + [("fast GF/s", lambda r: f"{r[1]['gflops']:.0f}", 9),
                        ("naive GF/s", lambda r: f"{r[2]['gflops']:.0f}", 10),
                        ("fast %mm(MKL/oneDNN)", lambda r: f"{r[1]['pct_of_mm_mkl']:.0f}/"
                         f"{fmt(r[1]['pct_of_mm_onednn'], '.0f')}", 20),
                        ("naive %mm(MKL/oneDNN)", lambda r: f"{r[2]['pct_of_mm_mkl']:.0f}/"
                         f"{fmt(r[2]['pct_of_mm_onednn'], '.0f')}", 21)]
    print(table(pair_rows(res["main"]), gcols,
                "\n== achieved GFLOP/s (FLOPs per window x windows/s)"))
    print("   GFLOP per window (FlopCounterMode, naive reference), forward / training step:")
    print("   " + ", ".join(f"{k}: {v['forward'] / 1e9:.1f} / {v['train_step'] / 1e9:.1f}"
                            for k, v in res["flops"].items()))
    print("   same-run fp32 matmul GFLOP/s:")
    for k, v in res["matmul_gflops"].items():
        print(f"     {k}: {v:.0f}")
    print()
    print(table(pair_rows(res["grid"]), cols, "== scaling grid (batch ~ equal tokens per call)"))
    print("\n== cost per token, growth from 30 to 120 patches (1.0 = linear in tokens)")
    for g in res["growth"]:
        print(f"   C={g['channels']:4d} {g['model']:5s} {g['mode']:5s} {g[gkey]:.2f}x")
    print("\n== bf16 autocast (19 x 30)")
    for name, v in res["bf16"].items():
        print(f"   {name:5s} infer {v['infer_speedup']:.2f}x  train {v['train_speedup']:.2f}x  "
              f"output max|err| {v['output_max_abs_err']:.3g} (max|out| {v['output_max_abs']:.3g}, "
              f"rel RMS {v['output_rel_rms_err']:.2%})  grad rel L2 err {v['grad_rel_l2_err']:.2%}")
    t = res["targets"]
    print(f"\n== targets (19 x 30, batch {t['batch']}, fp32)")
    print(f"   training step   {t['train_speedup']:.2f}x naive (target >= 1.6); "
          f"{t['train_pct_of_mm_mkl']:.0f}% of same-run torch.mm GFLOP/s, "
          f"{fmt(t['train_pct_of_mm_onednn'], '.0f')}% of oneDNN matmul")
    print(f"   inference       {t['infer_speedup']:.2f}x naive (target >= 1.6)")
    print(f"   train peak mem  {fmt(t['train_memory_fraction_of_naive'], '.2f')} of naive "
          "(target <= 0.33)")
    print(f"   per-token cost growth 30->120 patches, worst fast case "
          f"{t['fast_per_token_growth_max']:.2f}x (target <= 1.3)")
    print(f"   bf16 speed-up (fast) infer {t['bf16_fast_infer_speedup']:.2f}x, "
          f"train {t['bf16_fast_train_speedup']:.2f}x")
    print(f"\nthreads {res['threads']}, load average start {res['machine']['loadavg_start']} "
          f"end {res['machine']['loadavg_end']}, elapsed {res['elapsed_s']:.0f} s; "
          + "; ".join(res["notes"]))


if __name__ == "__main__":
    main()
