"""Windows per second the training loader delivers: block shuffle against today's random access.

    .venv/bin/python benchmarks/loader_speed.py            # ~3-5 min on 2 cores
    .venv/bin/python benchmarks/loader_speed.py --quick    # smoke mode (< 1 min)

For 19x30 and 128x30 windows (channels x 1-s patches of 200 samples) a store is written with
the real writer (default store settings: float32, blosc-zstd level 3, 64 windows per shard) from
EEG-like signals (1/f-like AR(1) noise plus an alpha rhythm, so compression is realistic rather
than that of white noise). Each loader is a real ``DataLoader`` iterated as the training loop
does; every batch tensor is read (``x.sum()``, what a copy to the accelerator costs at least):

- ``today``: the default shuffle (``shuffle=window``, every window drawn independently) read
  through Zarr, one read call per window, as before this benchmark's issue;
- ``random``: the same shuffle read by :class:`~csbrain.data.shard_reader.ShardReader`
  (``WindowDataset(direct_reads=True)``, now the default);
- ``block``: :func:`csbrain.engine.loader.train_loader` (``shuffle=block``): blocks of
  ``--block`` consecutive windows in random order, each rank's part of a batch shuffled;
- ``threads``: the same batches read by threads of the training process instead of worker
  processes (``loader_threads``; listed under the worker count it replaces).

Rates are steady state (timed from the first batch received, so worker start-up is excluded),
at 0, 1 and 2 workers, with the rate per worker. The shuffle's quality is stated per loader:
mean |distance| between the store positions of consecutive windows (relative to a full
shuffle's), distinct blocks (shards) and recordings per batch. The ``bounds`` section times,
in this process on one thread, what a worker must do per window: decode (Zarr reading whole
shards; numcodecs decoding one chunk) and collate, to say what bounds one worker.
The goal (issue 16): >= 5,000 windows/s (19x30) from one worker, rising linearly with workers.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader, default_collate  # noqa: E402

from csbrain.data.prepconfig import PrepConfig, StoreConfig  # noqa: E402
from csbrain.data.store import store_from_arrays  # noqa: E402
from csbrain.data.torch_dataset import WindowDataset  # noqa: E402
from csbrain.engine.distributed import ResumableSampler  # noqa: E402
from csbrain.engine.loader import block_ids, train_loader  # noqa: E402

NAMES_19 = ["Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8", "P7",
            "P3", "Pz", "P4", "P8", "O1", "O2"]


def channel_names(n: int) -> list[str]:
    if n == 19:
        return NAMES_19
    import mne

    names = mne.channels.make_standard_montage("colin27_1005").ch_names
    return names[:n]


def eeg_like(n: int, chans: int, patches: int, seed: int) -> np.ndarray:
    """Windows ``(n, C, P, 200)`` in model units (100 uV): AR(1) noise (pole 0.95, a 1/f-like
    spectrum) plus a 10 Hz rhythm, continuous from window to window as in a recording."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    length = n * patches * 200
    noise = lfilter([1.0], [1.0, -0.95], rng.normal(size=(chans, length)), axis=-1)
    t = np.arange(length) / 200.0
    sig = 0.1 * noise + 0.2 * np.sin(2 * np.pi * 10 * t + rng.uniform(0, 6.3, (chans, 1)))
    return np.ascontiguousarray(
        sig.reshape(chans, n, patches, 200).transpose(1, 0, 2, 3)).astype(np.float32)


def make_store(path: Path, chans: int, n_rec: int, per_rec: int, compression: str) -> Path:
    windows = {f"rec{i:02d}": eeg_like(per_rec, chans, 30, seed=i) for i in range(n_rec)}
    cfg = PrepConfig(store=StoreConfig(compression=compression))
    store_from_arrays(path, windows, channel_names(chans), config=cfg)
    return path


def loaders(path: Path, batch: int, block: int, workers: int):
    """``{name: (DataLoader, sampler)}``: today's random access, the same with direct reads,
    the block shuffle."""
    extra = {"prefetch_factor": 2} if workers else {}
    out = {}
    for name, direct in (("today", False), ("random", True)):
        ds = WindowDataset(path, direct_reads=direct)
        rs = ResumableSampler(ds, shuffle=True, seed=0)
        out[name] = (DataLoader(ds, batch_size=batch, sampler=rs, num_workers=workers, **extra),
                     rs)
    out["block"] = train_loader(WindowDataset(path), batch, block_windows=block,
                                num_workers=workers, seed=0)
    if workers:
        out["threads"] = train_loader(WindowDataset(path), batch, block_windows=block,
                                      threads=workers, seed=0)
    return out


def delivered(loader: DataLoader, max_batches: int) -> tuple[float, int]:
    """Steady-state windows/s of ``loader`` (from the first batch received) and batches seen."""
    it = iter(loader)
    first = next(it)
    float(first[0].sum())
    t0, n, k = time.perf_counter(), 0, 1
    for x, *_ in it:
        float(x.sum())                                   # touch every value of the batch
        n += len(x)
        k += 1
        if k >= max_batches:
            break
    dt = time.perf_counter() - t0
    del it
    return n / dt if dt > 0 and n else float("nan"), k


def orders(sampler, batch: int) -> list[np.ndarray]:
    sampler.set_epoch(0)
    sampler.set_start(0)
    items = list(iter(sampler))
    if items and isinstance(items[0], list):             # a batch sampler
        return [np.asarray(b) for b in items]
    flat = np.asarray(items)
    return [flat[i:i + batch] for i in range(0, len(flat), batch)]


def quality(batches: list[np.ndarray], shards: np.ndarray, recs: np.ndarray, n: int) -> dict:
    flat = np.concatenate(batches)
    full = np.random.default_rng(0).permutation(n)
    gap = float(np.abs(np.diff(flat)).mean())
    return {"mean_gap": gap, "mean_gap_full_shuffle": float(np.abs(np.diff(full)).mean()),
            "gap_ratio": gap / float(np.abs(np.diff(full)).mean()),
            "shards_per_batch": float(np.mean([len(set(shards[b])) for b in batches])),
            "recordings_per_batch": float(np.mean([len(set(recs[b])) for b in batches]))}


def bounds(ds: WindowDataset, batch: int, reps: int) -> dict:
    """Per-window costs of one worker's work, timed in this process (one thread)."""
    from numcodecs import Blosc, Zstd

    from csbrain.data.shard_reader import ShardReader

    reader = ShardReader(ds.store.data_path / ds.entries[0]["id"] / "x")
    rates = {}
    n0 = min(reader.per_shard or 64, len(reader))
    for name, arr in (("zarr", reader.array), ("direct", reader)):
        t0 = time.perf_counter()
        for _ in range(reps):
            whole = np.asarray(arr[0:n0])
        rates[f"{name}_whole_shard_read"] = reps * n0 / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for i in range(reps * 4):
            np.asarray(arr[i % n0])
        rates[f"{name}_single_window_read"] = reps * 4 / (time.perf_counter() - t0)
    comp = ds.store.config["store"]["compression"]
    codec = (None if comp == "none" else Zstd(level=3) if comp == "zstd" else
             Blosc(cname=comp.split("-", 1)[1], clevel=3, shuffle=Blosc.SHUFFLE))
    one = whole[0]
    decode = float("nan")
    if codec is not None:
        enc = codec.encode(one)
        t0 = time.perf_counter()
        for _ in range(reps * 4):
            codec.decode(enc)
        decode = reps * 4 / (time.perf_counter() - t0)
    items = [(torch.from_numpy(whole[i % n0]), 0) for i in range(batch)]
    t0 = time.perf_counter()
    for _ in range(reps):
        float(default_collate(items)[0].sum())
    collate = reps * batch / (time.perf_counter() - t0)
    return {**rates, "codec_decode_only": decode, "collate_and_touch": collate,
            "compression_ratio": float(one.nbytes / len(codec.encode(one))) if codec else 1.0,
            "window_mb": one.nbytes / 1e6}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke mode: small stores, few batches")
    ap.add_argument("--workers", default="0,1,2", help="worker counts (comma-separated)")
    ap.add_argument("--batch", type=int, default=64, help="batch size (windows)")
    ap.add_argument("--block", type=int, default=16, help="windows per block of the shuffle")
    ap.add_argument("--compression", default="blosc-zstd",
                    help="store compressions to compare (comma-separated: blosc-zstd, zstd, "
                         "blosc-lz4, none)")
    ap.add_argument("--dir", help="where to write the stores (default: a temporary folder)")
    ap.add_argument("--json", metavar="OUT", help="write the results as JSON")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    workers = [int(w) for w in args.workers.split(",")]
    # (channels, recordings, windows per recording, batches timed per loader)
    shapes = ([(19, 2, 64, 4), (128, 2, 16, 3)] if args.quick
              else [(19, 8, 192, 24), (128, 6, 64, 6)])
    batch = 16 if args.quick else args.batch
    out: dict = {"config": {"batch": batch, "block": args.block, "workers": workers,
                            "cpus": torch.multiprocessing.cpu_count(), "quick": args.quick},
                 "results": []}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for comp in args.compression.split(","):
            for chans, n_rec, per_rec, max_batches in shapes:
                path = make_store(Path(tmp) / f"s{chans}_{comp}", chans, n_rec, per_rec, comp)
                ds = WindowDataset(path)
                shards, recs = block_ids(ds), ds.recording_of
                res = {"shape": f"{chans}x30", "compression": comp, "n_windows": len(ds),
                       "bounds": bounds(ds, batch, 2 if args.quick else 6), "rates": {},
                       "quality": {}}
                for w in workers:
                    for name, (loader, sampler) in loaders(path, batch, args.block, w).items():
                        if name not in res["quality"] and name != "threads":
                            res["quality"][name] = quality(orders(sampler, batch), shards,
                                                           recs, len(ds))
                        rate, k = delivered(loader, max_batches)
                        res["rates"].setdefault(name, {})[str(w)] = {
                            "windows_per_s": rate, "per_worker": rate / max(w, 1),
                            "batches": k}
                        print(f"{res['shape']} {comp:>10} {name:>6} workers={w}: "
                              f"{rate:8.0f} windows/s ({rate / max(w, 1):7.0f} per worker)",
                              flush=True)
                b = res["bounds"]
                print(f"{res['shape']} {comp:>10} bounds (windows/s, one thread): whole shard "
                      f"zarr {b['zarr_whole_shard_read']:.0f} / direct "
                      f"{b['direct_whole_shard_read']:.0f}, single window zarr "
                      f"{b['zarr_single_window_read']:.0f} / direct "
                      f"{b['direct_single_window_read']:.0f}, decode only "
                      f"{b['codec_decode_only']:.0f}, collate+touch "
                      f"{b['collate_and_touch']:.0f}; ratio {b['compression_ratio']:.2f}")
                for name, q in res["quality"].items():
                    print(f"{res['shape']} {comp:>10} {name:>6} shuffle: mean gap "
                          f"{q['gap_ratio']:.2f} x a full shuffle's, "
                          f"{q['shards_per_batch']:.1f} shards and "
                          f"{q['recordings_per_batch']:.1f} recordings per batch")
                out["results"].append(res)
    out["targets"] = targets(out["results"], workers)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return out


def targets(results: list[dict], workers: list[int]) -> list[dict]:
    """Issue 16's goals against the measured rates: >= 5,000 windows/s (19x30) from one
    worker (the fastest loader at one worker), and linear scaling (rate at the most workers
    over the rate at one, against the worker count, within 20 %)."""
    print("== targets")
    found = []
    for res in results:
        if res["shape"] != "19x30" or 1 not in workers:
            continue
        one = {n: r["1"]["windows_per_s"] for n, r in res["rates"].items() if "1" in r}
        best = max(one, key=one.get)
        top = max(workers)
        rows = [("one_worker_windows_per_s", one[best], 5000.0, one[best] >= 5000.0)]
        if top > 1:
            scale = res["rates"][best][str(top)]["windows_per_s"] / one[best]
            rows.append((f"scaling_{top}_workers", scale, float(top), scale >= 0.8 * top))
        for name, value, goal, met in rows:
            found.append({"compression": res["compression"], "loader": best, "name": name,
                          "value": round(value, 2), "target": goal, "met": bool(met)})
            print(f"19x30 {res['compression']} ({best}) {name}: {value:.2f} (target "
                  f"{goal:g}) {'met' if met else 'NOT met'}")
    return found


if __name__ == "__main__":
    main()
