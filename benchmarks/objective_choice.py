"""Which pretraining objective should the demo use? Measured with the built-in diagnostics.

What it measures
----------------
It builds the demo's pretraining corpus (``csbrain.demo.data.pretraining_corpus`` on the
sources of ``csbrain.demo.plan.PRETRAIN_SOURCES``: only windows before each recording's
hold-out point), holds out 10 % of each source's windows (by window, seeded), and pretrains one
model per objective variant (same seed, same number of steps, the demo's default model size:
``PLANS["default"].model``) on the other 90 %. For each variant it reports, on the held-out
pretraining windows only:

- the masked reconstruction loss of its own objective (fixed masks) next to the loss of the
  same model with its reconstruction heads set to zero ("predict zero"), and their ratio;
- :func:`csbrain.engine.diagnostics.diagnose` (``n_random`` random-init backbones): spread /
  RMS, effective rank and mean pairwise cosine of the pooled features at the patch embedding
  and after the last layer (mean over the sources, each on its own montage);

and a linear probe (:func:`~csbrain.engine.diagnostics.linear_probe`, 5-fold CV) of the frozen
last-layer features (pooled and per-channel) on the TRAINING pool (``task_split`` "train" and
"val" windows; never "test") of the demo tasks ``eyes_closed_open`` and ``face13_s01_to_s02``,
pretrained vs random-init backbones (mean +- std over ``n_random``; their features do not
depend on the variant, so they are computed once).

The choice of objective rests on these held-out / training-split numbers only.

Run
---
::

    .venv/bin/python benchmarks/objective_choice.py                 # ~300 steps per variant
    .venv/bin/python benchmarks/objective_choice.py --quick         # smoke run (a few steps)
    .venv/bin/python benchmarks/objective_choice.py --variants released,spectral \\
        --combo "target=spectral,head_init_scale=0.1,mask_strategy=time_block"

Results go to ``--json`` (default ``/tmp/objective_choice.json``), rewritten after every
variant; variants already in that file are skipped unless ``--fresh``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np  # noqa: E402
import torch  # noqa: E402

#: The released objective, spelled out (the demo plan's own objective keys are overridden).
RELEASED = {"target": "waveform", "mask_strategy": "random", "mask_token": "zero",
            "vicreg_weight": 0.0, "head_init_scale": 1.0}
#: In order of priority (a run cut short still has the most informative ones).
VARIANTS: dict[str, dict] = {
    "released": {},
    "head_init_0.1": {"head_init_scale": 0.1},
    "spectral": {"target": "spectral"},
    # the combination the previous session's measurements pointed to (the demo plan's choice)
    "spectral+head_0.1": {"target": "spectral", "head_init_scale": 0.1},
    "waveform+spectral": {"target": "waveform+spectral"},
    "vicreg_1": {"vicreg_weight": 1.0},
    "normalized": {"target": "normalized"},
    "time_block": {"mask_strategy": "time_block"},
    "channel": {"mask_strategy": "channel"},
    "learned_token": {"mask_token": "learned"},
}
PROBE_TASKS = ("eyes_closed_open", "face13_s01_to_s02")
HOLDOUT_FRACTION = 0.1


def _log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def _windows(rd) -> np.ndarray:
    """All windows of a RunData as one array (n, C, P, S)."""
    return np.stack([np.asarray(rd.dataset[i][0]) for i in range(len(rd.labels))])


def build_corpus(seed: int):
    """The demo's pretraining sources, split per source into 90 % train / 10 % held out."""
    from csbrain.data import load_dataset
    from csbrain.demo.data import pretraining_corpus
    from csbrain.demo.plan import PRETRAIN_SOURCES
    from csbrain.engine.rundata import RunData

    sources = {s.dataset: load_dataset(s.dataset, overrides=s.overrides)
               for s in PRETRAIN_SOURCES}
    out = pretraining_corpus(sources)
    if len(out) == 3:                  # older demo: one array on the shared channels
        x, montage, summary = out
        data = [RunData.from_arrays(x, np.full(len(x), -1), montage)]
    else:
        data, summary = out
    train, held = [], []
    rng = np.random.default_rng(seed)
    for rd in data:
        x = _windows(rd)
        n = len(x)
        perm = rng.permutation(n)
        k = max(2, int(round(HOLDOUT_FRACTION * n)))
        hi, ti = np.sort(perm[:k]), np.sort(perm[k:])
        rec = np.asarray(rd.groups["recording"])
        sub = np.asarray(rd.groups["subject"]) if "subject" in rd.groups else None
        train.append(RunData.from_arrays(x[ti], np.full(len(ti), -1), rd.montage,
                                         recording=rec[ti],
                                         subject=None if sub is None else sub[ti]))
        held.append((rd.montage, torch.as_tensor(x[hi])))
    return train, held, summary


def probe_data():
    """Per probe task: (montage, windows, labels) of the task's train+val pool only."""
    from csbrain.data import load_dataset
    from csbrain.demo.data import task_split
    from csbrain.demo.plan import PLANS, TASKS

    out = {}
    for task in TASKS:
        if task.key not in PROBE_TASKS:
            continue
        lw = load_dataset(task.dataset, overrides=task.overrides)
        split = task_split(task, lw, val_fraction=PLANS["default"].val_fraction)
        keep = np.isin(split, ["train", "val"])
        assert not np.any(split[keep] == "test")
        out[task.key] = (lw.montage, torch.as_tensor(np.asarray(lw.x[keep], dtype=np.float32)),
                         np.asarray(lw.y[keep]))
    return out


def random_backbone(config, montage, seed: int):
    from csbrain.models import CSBrain

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return CSBrain(montage, config)


def probe_sites(backbone, windows) -> dict[str, np.ndarray]:
    from csbrain.engine.diagnostics import extract_features

    f = extract_features(backbone, windows, batch_size=64)
    last = f"layer{len(backbone.layers)}"
    return {"last_pooled": f[f"{last}_pooled"], "last_channels": f[f"{last}_channels"]}


def run_probes(feats, labels) -> dict:
    from csbrain.engine.diagnostics import linear_probe

    return {k: linear_probe(v, labels, seed=0) for k, v in feats.items()}


def held_out_loss(model, held, cfg) -> dict:
    """Masked loss of the variant's own objective on the held-out windows (fixed masks), and
    of the same model with zeroed reconstruction heads (predicting zero)."""
    from csbrain.train.objectives import MaskedReconstruction

    zero = __import__("copy").deepcopy(model)
    with torch.no_grad():
        for h in (zero.head, getattr(zero, "spectral_head", None)):
            if h is not None:
                for p in h.parameters():
                    p.zero_()
    res = {}
    for name, m in (("loss", model), ("zero_loss", zero)):
        obj = MaskedReconstruction(cfg.mask_ratio, seed=0, mask_strategy=cfg.mask_strategy,
                                   target=cfg.target, spectral_weight=cfg.spectral_weight)
        gen = torch.Generator().manual_seed(12345)
        m.eval()
        total = count = 0.0
        with torch.no_grad():
            for montage, x in held:
                m.backbone.set_montage(montage)
                for i in range(0, len(x), 32):
                    xb = x[i:i + 32]
                    mask = obj.draw_mask(m, xb, gen)
                    n = float(mask.sum())
                    total += float(obj.reconstruction(m, xb, mask)[0]) * max(n, 1.0)
                    count += n
        res[name] = total / max(count, 1.0)
    res["ratio"] = res["loss"] / res["zero_loss"] if res["zero_loss"] else None
    return res


def held_out_diagnostics(backbone, held, n_random: int) -> dict:
    from csbrain.engine.diagnostics import diagnose

    per_source = []
    last = f"layer{len(backbone.layers)}"
    for montage, x in held:
        backbone.set_montage(montage)
        d = diagnose(backbone, x, n_random=n_random, seed=0, batch_size=64)
        per_source.append({"n_channels": int(x.shape[1]), "n_windows": int(len(x)),
                           **{site: {k: d["features"][f"{site}_pooled" if site != "last"
                                                      else f"{last}_pooled"][k]
                                     for k in ("model", "random_mean", "collapsed")}
                              for site in ("embedding", "last")}})
    mean = {}
    for site in ("embedding", "last"):
        for who in ("model", "random_mean"):
            for stat in ("spread", "effective_rank", "mean_cosine"):
                mean[f"{site}_{who}_{stat}"] = float(np.mean(
                    [s[site][who][stat] for s in per_source]))
    return {"per_source": per_source, "mean": mean}


def _fmt_probe(p, r, key):
    vals = [x[key] for x in r if x.get(key) is not None]
    return f"{p[key]:.3f} vs {np.mean(vals):.3f}+-{np.std(vals):.3f}"


def table(results: dict) -> str:
    rows = []
    head = (f"{'variant':<20} {'loss/zero':>9} {'emb spr':>8} {'last spr (rand)':>16} "
            f"{'rank (rand)':>13} {'cos':>6}  probes bacc|auroc pretrained vs random  time")
    rows.append(head)
    for name, r in results["variants"].items():
        if "error" in r:
            rows.append(f"{name:<20} ERROR {r['error'][:100]}")
            continue
        m = r["held_out"]["mean"]
        line = (f"{name:<20} {r['loss']['ratio']:>9.3f} {m['embedding_model_spread']:>8.3f} "
                f"{m['last_model_spread']:>7.3f} ({m['last_random_mean_spread']:.3f}) "
                f"{m['last_model_effective_rank']:>5.2f} "
                f"({m['last_random_mean_effective_rank']:.2f}) "
                f"{m['last_model_mean_cosine']:>6.3f} ")
        cells = []
        for task, pr in r["probe"].items():
            for site, p in pr.items():
                rnd = results["random_probe"][task][site]
                cells.append(f"{task[:4]}/{site.split('_')[1][:4]} "
                             f"{_fmt_probe(p, rnd, 'balanced_accuracy')}|"
                             f"{_fmt_probe(p, rnd, 'auroc')}")
        rows.append(line + f" wins {r['probe_wins']}/{len(cells)}  {r['seconds']:.0f}s")
        rows.extend("      " + c for c in cells)
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few steps, one random backbone")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--n-random", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help="comma-separated names of VARIANTS (and 'combo' with --combo)")
    ap.add_argument("--combo", default=None,
                    help="extra variant 'combo': comma-separated key=value objective overrides")
    ap.add_argument("--json", default="/tmp/objective_choice.json")
    ap.add_argument("--workdir", default="/tmp/objective_choice_runs")
    ap.add_argument("--fresh", action="store_true", help="ignore variants already in --json")
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.n_random = 10, 1
    torch.set_num_threads(args.threads)

    from csbrain.demo.plan import PLANS
    from csbrain.models import load_model
    from csbrain.train import PretrainConfig, load_run_config, pretrain

    variants = {k: VARIANTS[k] for k in args.variants.split(",") if k in VARIANTS}
    if args.combo:
        variants["combo"] = {kv.split("=")[0]: json.loads(kv.split("=")[1])
                             if kv.split("=")[1][0].isdigit() else kv.split("=")[1]
                             for kv in args.combo.split(",")}
    path = Path(args.json)
    results = json.loads(path.read_text()) if path.exists() and not args.fresh else {}
    if results.get("settings", {}).get("steps") not in (None, args.steps):
        _log("settings differ from", path, "- starting fresh")
        results = {}
    plan = PLANS["default"]
    settings = {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr,
                "warmup_steps": max(1, args.steps // 10), "min_lr": 1e-5,
                "weight_decay": plan.pretrain.get("weight_decay", 0.05),
                "mask_ratio": plan.pretrain.get("mask_ratio", 0.5), "seed": args.seed,
                "n_random": args.n_random, "holdout_fraction": HOLDOUT_FRACTION,
                "model": plan.model, "threads": args.threads, "probe_tasks": PROBE_TASKS}
    results.setdefault("variants", {})
    results["settings"] = settings

    t0 = time.perf_counter()
    train, held, summary = build_corpus(args.seed)
    results["corpus"] = {"sources": summary,
                         "train_windows": [len(r.labels) for r in train],
                         "held_out_windows": [len(x) for _, x in held]}
    probes = probe_data()
    _log(f"data ready in {time.perf_counter() - t0:.0f} s: "
         f"train {results['corpus']['train_windows']},"
         f" held out {results['corpus']['held_out_windows']},"
         f" probe windows {[len(v[2]) for v in probes.values()]}")

    base = dict(plan.model)
    base.update({"max_steps": args.steps, "batch_size": args.batch_size, "lr": args.lr,
                 "min_lr": 1e-5, "weight_decay": settings["weight_decay"],
                 "warmup_epochs": 0.0, "warmup_steps": settings["warmup_steps"],
                 "mask_ratio": settings["mask_ratio"], "val_fraction": 0.0,
                 "select_metric": "last", "seed": args.seed, "progress": False,
                 "cpu_threads": args.threads, "device": "cpu", "log_every": 10,
                 "source_weighting": plan.pretrain.get("source_weighting", "proportional"),
                 "spectral_weight": 1.0})
    if "random_probe" not in results:
        t = time.perf_counter()
        cfg = load_run_config(PretrainConfig, None, [f"{k}={v}" for k, v in base.items()])
        results["random_probe"] = {}
        for task, (montage, x, y) in probes.items():
            per = [run_probes(probe_sites(random_backbone(cfg.model_config, montage,
                                                          args.seed + 1 + i), x), y)
                   for i in range(args.n_random)]
            results["random_probe"][task] = {site: [p[site] for p in per] for site in per[0]}
        results["random_probe_seconds"] = round(time.perf_counter() - t, 1)
        _log(f"random-init probes in {results['random_probe_seconds']} s")

    workdir = Path(args.workdir)
    for name, over in variants.items():
        if name in results["variants"] and "error" not in results["variants"][name]:
            _log(f"{name}: already measured, skipped")
            continue
        obj = {**RELEASED, **over}
        _log(f"{name}: {obj}")
        t = time.perf_counter()
        run_dir = workdir / name
        shutil.rmtree(run_dir, ignore_errors=True)
        try:
            cfg = load_run_config(PretrainConfig, None,
                                  [f"{k}={v}" for k, v in {**base, **obj}.items()])
            res = pretrain(cfg, train, run_dir)
            t_train = time.perf_counter() - t
            model = load_model(run_dir)
            model.eval()
            loss = held_out_loss(model, held, cfg)
            diag = held_out_diagnostics(model.backbone, held, args.n_random)
            probe, wins, cells = {}, 0, 0
            for task, (montage, x, y) in probes.items():
                model.backbone.set_montage(montage)
                probe[task] = run_probes(probe_sites(model.backbone, x), y)
                for site, p in probe[task].items():
                    rnd = results["random_probe"][task][site]
                    cells += 1
                    wins += int(p["auroc"] > np.mean([r["auroc"] for r in rnd]))
            log = run_dir / "metrics.jsonl"
            train_losses = [json.loads(line) for line in log.read_text().splitlines()
                            if "train_loss" in line] if log.is_file() else []
            results["variants"][name] = {
                "objective": obj, "loss": loss, "held_out": diag, "probe": probe,
                "probe_wins": wins, "probe_cells": cells, "train_metrics": res.metrics,
                "train_log_head_tail": train_losses[:2] + train_losses[-2:],
                "train_seconds": round(t_train, 1),
                "seconds": round(time.perf_counter() - t, 1)}
        except Exception as e:  # noqa: BLE001 - report and go on with the next variant
            import traceback
            traceback.print_exc()
            results["variants"][name] = {"objective": obj, "error": f"{type(e).__name__}: {e}",
                                         "seconds": round(time.perf_counter() - t, 1)}
        results["total_seconds"] = round(time.perf_counter() - t0, 1)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=1, default=str))
        tmp.replace(path)
        r = results["variants"][name]
        if "error" in r:
            _log(f"{name}: ERROR {r['error']}")
        else:
            m = r["held_out"]["mean"]
            _log(f"{name}: {r['seconds']:.0f} s, loss/zero {r['loss']['ratio']:.3f}, last spread "
                 f"{m['last_model_spread']:.3f} (random {m['last_random_mean_spread']:.3f}), "
                 f"rank {m['last_model_effective_rank']:.2f} "
                 f"(random {m['last_random_mean_effective_rank']:.2f}), probe wins "
                 f"{r['probe_wins']}/{r['probe_cells']}")
    print(table(results), flush=True)
    _log(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
