"""Options shared by several subcommands (one place for their spelling and help)."""

from __future__ import annotations

import argparse


def add_config_options(p: argparse.ArgumentParser, what: str = "options") -> None:
    """``--config FILE`` and repeatable ``--set KEY=VALUE`` (into ``args.config``/``overrides``)."""
    p.add_argument("--config", metavar="FILE", help=f"{what} file (TOML, YAML or JSON)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one key, dotted for sections, e.g. --set model.n_layers=4 "
                        "(repeatable)")
