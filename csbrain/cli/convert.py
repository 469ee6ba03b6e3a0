"""``csbrain convert SRC.pth DEST_DIR``: a released checkpoint to config.json + model.safetensors."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert a released .pth into a csbrain model folder",
                       description=__doc__)
    p.add_argument("src", help="released state dict (.pth)")
    p.add_argument("dest", help="new folder to write")
    p.add_argument("--preset", help="released montage name (default: TUEG, the pretraining montage)")
    p.add_argument("--channels", help="comma-separated channel names instead of a preset")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from csbrain.models.inspect import convert_released

    channels = args.channels.split(",") if args.channels else None
    out = convert_released(args.src, args.dest, preset=args.preset, channels=channels)
    print(f"wrote {out}/config.json and {out}/model.safetensors")
    return 0
