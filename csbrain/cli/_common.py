"""Options shared by several subcommands (one place for their spelling and help)."""

from __future__ import annotations

import argparse


def add_config_options(p: argparse.ArgumentParser, what: str = "options") -> None:
    """``--config FILE`` and repeatable ``--set KEY=VALUE`` (into ``args.config``/``overrides``)."""
    p.add_argument("--config", metavar="FILE", help=f"{what} file (TOML, YAML or JSON)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one key, dotted for sections, e.g. --set model.n_layers=4 "
                        "(repeatable)")


def add_montage_options(p: argparse.ArgumentParser, default: str = "") -> None:
    """``--preset NAME`` or ``--channels A,B,C``: the montage a released checkpoint is read with."""
    p.add_argument("--preset", help="released montage name (csbrain.list_presets())" + default)
    p.add_argument("--channels", type=lambda s: s.split(","), metavar="A,B,C",
                   help="comma-separated channel names instead of a preset")
