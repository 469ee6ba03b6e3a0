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
    """``--preset NAME`` or ``--channels A,B,C`` (not both): the montage a released checkpoint
    is read with; :func:`montage_option` gives it as ``load_model`` takes it."""
    group = p.add_mutually_exclusive_group()
    group.add_argument("--preset", help="released montage name (csbrain.list_presets())" + default)
    group.add_argument("--channels", type=lambda s: s.split(","), metavar="A,B,C",
                       help="comma-separated channel names instead of a preset")


def montage_option(args: argparse.Namespace) -> str | list[str] | None:
    """The ``montage=`` argument of :func:`csbrain.models.load_model` from the montage options."""
    return args.preset if args.preset is not None else args.channels


def add_stream_options(p: argparse.ArgumentParser) -> None:
    """``--bf16``, ``--chunk-s S`` and ``--whole`` of the streaming ``predict`` / ``embed``."""
    p.add_argument("--bf16", action="store_true",
                   help="bfloat16 autocast; refused where the CPU/GPU has no native bfloat16 "
                        "(CPUs need AVX512_BF16 or AMX)")
    p.add_argument("--chunk-s", type=float, default=600.0, metavar="S",
                   help="seconds of EEG prepared per chunk; memory grows with it, not with the "
                        "recording (default 600)")
    p.add_argument("--whole", action="store_true",
                   help="prepare each recording whole (FFT resampling, as prepared stores) "
                        "instead of streaming it in chunks (polyphase resampling)")
