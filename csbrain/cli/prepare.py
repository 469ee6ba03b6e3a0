"""``csbrain prepare``: recordings or a named dataset -> a window store."""

from __future__ import annotations

import argparse
import sys

from csbrain.cli._common import add_config_options


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "prepare", help="preprocess recordings into a window store (Zarr)",
        description="Preprocess EEG files, folders, BIDS roots or a named dataset (see "
                    "`csbrain datasets`) into a window store. Resumable: rerun the same command "
                    "after an interruption.")
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="file (EDF, BDF, FIF, .set, .vhdr, GDF, CNT, .ts), folder, BIDS root, "
                        "or NAME[:VARIANT] of a named dataset")
    p.add_argument("--out", required=True, metavar="STORE", help="store folder")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="recordings prepared in parallel (default 1; -1: all cores)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a store made with other preprocessing parameters")
    add_config_options(p, "preprocessing config")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from csbrain.configio import load_config
    from csbrain.data.pipeline import prepare
    from csbrain.data.prepconfig import PrepConfig
    from csbrain.data.sources import resolve_sources

    recordings, defaults = resolve_sources(args.sources)
    cfg = load_config(PrepConfig, args.config, args.overrides, defaults=defaults)
    bars: list[tqdm] = []

    def progress(res) -> None:  # the bar appears with the first result, after the store opened
        if not bars:
            bars.append(tqdm(total=len(recordings), unit="rec", desc="prepare", file=sys.stderr))
        bars[0].set_postfix_str(f"{res.rec_id} {res.status}", refresh=False)
        bars[0].update(1)

    try:
        summary = prepare(recordings, args.out, cfg, jobs=args.jobs, overwrite=args.overwrite,
                          progress=progress)
    finally:
        for bar in bars:
            bar.close()
    print("\n".join(summary.lines()))
    problem = summary.no_window_lines()
    if problem:
        print("csbrain prepare: error: " + "\n  ".join(problem), file=sys.stderr)
        return 1
    return 0
