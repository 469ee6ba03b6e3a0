"""``csbrain check``: what ``prepare`` would do to each recording, before any work."""

from __future__ import annotations

import argparse
import json

from csbrain.cli._common import add_config_options


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "check", help="show what prepare would do to each recording (writes nothing)",
        description="For each recording: channels -> 10-05 names -> regions, sampling rate, "
                    "duration, unit and amplitude per channel, flat/noisy channels, adapted "
                    "filters, windows each rejection rule removes and the options that change "
                    "it. Exit 0 when every recording would prepare, 1 otherwise.")
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="file, folder, BIDS root or NAME[:VARIANT] (as for prepare)")
    p.add_argument("--json", action="store_true", help="print the reports as JSON")
    add_config_options(p, "preprocessing config")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from csbrain.configio import load_config
    from csbrain.data.check import as_dict, check_recordings, summary_line
    from csbrain.data.prepconfig import PrepConfig
    from csbrain.data.sources import resolve_sources

    recordings, defaults = resolve_sources(args.sources)
    cfg = load_config(PrepConfig, args.config, args.overrides, defaults=defaults)
    reports = check_recordings(recordings, cfg)
    if args.json:
        print(json.dumps([as_dict(r) for r in reports], indent=1, default=str))
    else:
        for r in reports:
            print("\n".join(r.lines()))
        print(summary_line(reports))
    return 0 if reports and all(r.ok for r in reports) else 1
