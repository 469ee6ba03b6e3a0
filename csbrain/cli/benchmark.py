"""``csbrain benchmark list|prepare|run|report``: the paper's 16 fine-tuning datasets.

- ``list``: datasets, tasks, metrics, split rules, defective variants, and whether a store
  exists (``--stores DIR``: a folder holding one store per dataset name).
- ``prepare DATASET... --raw DIR --out STORE``: convert a copy as distributed and preprocess it
  with the recipe (resumable). With several datasets, ``--raw`` and ``--out`` are parents
  holding one folder per dataset name.
- ``run --data STORE... --init CSBrain.pth --out DIR [--seeds 0 1 2 3 4] [--variant V]``:
  fine-tune with the recipe, one run folder per seed (resumable).
- ``report DIR... --out FILE``: FILE.md, FILE.html and FILE.json, mean ± std per metric beside
  the paper's numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("benchmark", help="the paper's 16-dataset fine-tuning benchmark",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = sub.add_parser("list", help="datasets, tasks, metrics, stores")
    ls.add_argument("--stores", metavar="DIR", help="folder with one store per dataset name")
    pr = sub.add_parser("prepare", help="convert + preprocess dataset copies into stores")
    pr.add_argument("datasets", nargs="+", metavar="DATASET")
    pr.add_argument("--raw", required=True, metavar="DIR", help="the copy as distributed")
    pr.add_argument("--out", required=True, metavar="STORE")
    pr.add_argument("--variant", default="fixed", choices=("released", "fixed"))
    pr.add_argument("--subjects", nargs="+", metavar="ID",
                    help="prepare only these subjects (the listing check covers them alone)")
    rn = sub.add_parser("run", help="fine-tune prepared stores, one run folder per seed")
    rn.add_argument("--data", required=True, nargs="+", metavar="STORE")
    rn.add_argument("--init", metavar="CSBrain.pth", help="initial backbone")
    rn.add_argument("--out", required=True, metavar="DIR")
    rn.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4], metavar="K")
    rn.add_argument("--variant", choices=("released", "fixed"),
                    help="must match the store's (default: the store's)")
    rn.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a run-config key after the recipe's (repeatable)")
    rp = sub.add_parser("report", help="mean ± std per metric beside the paper's numbers")
    rp.add_argument("dirs", nargs="+", metavar="DIR")
    rp.add_argument("--out", required=True, metavar="FILE")
    p.set_defaults(run=run)


def _list(args: argparse.Namespace) -> int:
    from csbrain.benchmark.recipes import load_recipes

    print(f"{'name':18} {'dataset':17} {'task':10} {'classes':>7} {'window':>6}  "
          f"{'select':17} {'variants':9} store")
    for name, r in load_recipes().items():
        store = "-"
        if args.stores:
            f = Path(args.stores) / name / "benchmark.json"
            store = "no"
            if f.is_file():
                n = json.loads(f.read_text("utf-8")).get("n_windows")
                store = (f"yes ({n['train']}/{n['val']}/{n['test']} windows train/val/test)"
                         if n else "unfinished (rerun prepare)")
        var = "rel/fixed" if any(r["variants"].values()) else "one"
        print(f"{name:18} {r['title']:17} {r['task']:10} {len(r['classes']) or '-':>7} "
              f"{r['window_s']:>5}s  {r['select_metric']:17} {var:9} {store}")
        seq = (f"; sequences of {r['sequence_length']} windows, one label each"
               if r.get("sequence_length") else "")
        print(f"{'':18} metrics: {', '.join(r['metrics'])}; split: {r['split']['rule']}{seq}")
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from csbrain.benchmark.prepare import prepare_benchmark
    from csbrain.benchmark.recipes import get_recipe

    for name in args.datasets:  # every name is checked before any work
        get_recipe(name, args.variant)
    several = len(args.datasets) > 1
    for name in args.datasets:
        raw = Path(args.raw) / name if several else Path(args.raw)
        out = Path(args.out) / name if several else Path(args.out)
        bars: list[tqdm] = []

        def progress(rec: str, name: str = name, bars: list = bars) -> None:
            if not bars:  # the bar appears with the first recording, after the checks
                bars.append(tqdm(unit="rec", desc=f"prepare {name}", file=sys.stderr))
            bars[0].set_postfix_str(rec, refresh=False)
            bars[0].update(1)

        try:
            rec = prepare_benchmark(name, raw, out, variant=args.variant,
                                    subjects=args.subjects, progress=progress)
        finally:
            for bar in bars:
                bar.close()
        skipped = rec.get("skipped", {})
        print(f"{name} ({rec['variant']}): {len(rec['splits'])} recordings, windows "
              f"{rec['n_windows']} -> {out}" + (f"; {len(skipped)} skipped: " + ", ".join(
                  f"{k} [{v}]" for k, v in list(skipped.items())[:5]) if skipped else ""))
    return 0


def _run(args: argparse.Namespace) -> int:
    from csbrain.benchmark.runner import run_benchmark

    for store in args.data:
        dirs = run_benchmark(store, args.out, init=args.init, seeds=args.seeds,
                             variant=args.variant, overrides=args.overrides,
                             progress=lambda s, what: print(f"seed {s}: {what}", file=sys.stderr))
        print(f"{store}: {len(dirs)} run(s) in {dirs[0].parent}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from csbrain.benchmark.report import write_report

    paths = write_report(args.dirs, args.out)
    print("\n".join(str(p) for p in paths.values()))
    return 0


def run(args: argparse.Namespace) -> int:
    return {"list": _list, "prepare": _prepare, "run": _run, "report": _report}[args.action](args)
