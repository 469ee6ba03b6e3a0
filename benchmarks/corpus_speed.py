"""Mixed-montage pretraining throughput against single-montage, at equal tokens per step.

    .venv/bin/python benchmarks/corpus_speed.py            # ~3 min on 2 cores
    .venv/bin/python benchmarks/corpus_speed.py --quick    # smoke mode (< 30 s)

Two groups of windows with the same number of tokens per batch: A = 19 channels x 10 patches,
B = 10 channels x 19 patches (batch 8: 1520 tokens each). Three corpora go through the real
pieces of a pretraining run (``open_corpus``, ``GroupedBatchSampler``, ``DataLoader``, the switch
to each batch's montage, forward + masked MSE + backward + AdamW on the fused CPU path): A only,
B only, and A + B mixed (every other batch changes montage). Steps alternate between the three
runs (one step each in turn) after warm-up, and the medians of the step times are compared in
one process: ``mixed / single`` = tokens/s of the mixed run over the tokens/s of the A-only and
B-only runs averaged (the same work, without montage switches). The goal (issue 12) is >= 0.90.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from csbrain import CSBrainConfig, CSBrainForPretraining  # noqa: E402
from csbrain.engine.corpus import open_corpus  # noqa: E402
from csbrain.engine.rundata import RunData  # noqa: E402
from csbrain.engine.sampler import GroupedBatchSampler  # noqa: E402
from csbrain.train.losses import masked_mse  # noqa: E402
from csbrain.train.masking import bernoulli_mask, sorted_target  # noqa: E402

NAMES = ["Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8", "P7", "P3",
         "Pz", "P4", "P8", "O1", "O2"]
GROUP_A, GROUP_B = (19, 10), (10, 19)          # (channels, patches): 190 tokens a window


def windows(n: int, chans: int, patches: int, seed: int) -> RunData:
    x = np.random.default_rng(seed).normal(size=(n, chans, patches, 200)).astype(np.float32)
    return RunData.from_arrays(x, np.full(n, -1), NAMES[:chans])


def runner(parts: list[RunData], model: torch.nn.Module, batch: int):
    """An endless iterator of timed training steps on ``parts`` (a corpus)."""
    corpus = open_corpus(parts)
    subset = corpus.subset(np.arange(len(corpus)))
    sampler = GroupedBatchSampler(subset.groups, batch, sources=subset.sources, seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    epoch = 0
    while True:
        sampler.set_epoch(epoch)
        for x, _, g in DataLoader(subset, batch_sampler=sampler):
            t0 = time.perf_counter()
            model.backbone.set_montage(subset.montages[int(g[0])])
            mask = bernoulli_mask(x.shape[:3], 0.5, generator=gen)
            loss = masked_mse(model(x, mask), sorted_target(x, model.backbone.layout.order), mask)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            yield time.perf_counter() - t0, x.shape[0] * x.shape[1] * x.shape[2]
        epoch += 1


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke mode: fewer, smaller steps")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per run")
    ap.add_argument("--json", metavar="OUT", help="write the results as JSON")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    steps = args.steps or (4 if args.quick else 30)
    cfg = CSBrainConfig.from_preset("tiny") if args.quick else CSBrainConfig(
        d_model=80, n_layers=4, n_heads=4, dim_feedforward=160, temporal_mode="paper")
    batch, n = 8, 64
    a = windows(n, *GROUP_A, seed=0)
    b = windows(n, *GROUP_B, seed=1)
    runs = {}
    for name, parts in (("A only", [a]), ("B only", [b]), ("mixed A+B", [a, b])):
        torch.manual_seed(0)
        runs[name] = runner(parts, CSBrainForPretraining(parts[0].montage, cfg).train(), batch)
    times: dict[str, list[float]] = {k: [] for k in runs}
    tokens: dict[str, list[int]] = {k: [] for k in runs}
    for i in range(steps + 2):                       # 2 warm-up steps each, then alternate
        for name, it in runs.items():
            dt, tok = next(it)
            if i >= 2:
                times[name].append(dt)
                tokens[name].append(tok)
    rate = {k: float(np.sum(tokens[k]) / np.sum(times[k])) for k in runs}
    med = {k: float(np.median(times[k])) for k in runs}
    single = (rate["A only"] + rate["B only"]) / 2
    out = {"config": {"d_model": cfg.d_model, "n_layers": cfg.n_layers, "batch": batch,
                      "groups": [GROUP_A, GROUP_B], "steps": steps,
                      "threads": torch.get_num_threads()},
           "tokens_per_s": rate, "median_step_s": med,
           "mixed_over_single": rate["mixed A+B"] / single}
    for k in runs:
        print(f"{k:>10}: {rate[k]:8.0f} tokens/s, median step {med[k] * 1e3:7.1f} ms")
    print(f"mixed / single (mean of A only, B only) = {out['mixed_over_single']:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
