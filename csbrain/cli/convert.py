"""``csbrain convert SRC.pth DEST_DIR``: a released checkpoint to config.json +
model.safetensors."""

from __future__ import annotations

import argparse

from csbrain.cli._common import add_montage_options, montage_option


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert a released .pth into a csbrain model folder",
                       description=__doc__)
    p.add_argument("src", help="released state dict (.pth)")
    p.add_argument("dest", help="new folder to write")
    add_montage_options(p, "; default: TUEG, the pretraining montage")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from csbrain.models.inspect import convert_released

    out = convert_released(args.src, args.dest, montage=montage_option(args))
    card = " and README.md (model card)" if (out / "README.md").is_file() else ""
    print(f"wrote {out}/config.json, {out}/model.safetensors{card}")
    return 0
