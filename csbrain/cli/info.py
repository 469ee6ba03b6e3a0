"""``csbrain info PATH``: architecture, config, parameter count, montage and regions."""

from __future__ import annotations

import argparse
import json

from csbrain.cli._common import add_montage_options, montage_option


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="describe a checkpoint (our folder or a released .pth)",
                       description=__doc__)
    p.add_argument("path", help="model folder (config.json + model.safetensors) or released .pth")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_montage_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from csbrain.models import load_model
    from csbrain.models.inspect import summarize

    info = summarize(load_model(args.path, montage=montage_option(args)))
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    cfg = info["config"]
    print(f"{info['architecture']}  ({args.path})")
    print(f"  parameters: {info['parameters']:,} (backbone {info['backbone_parameters']:,})")
    print("  config: " + ", ".join(f"{k}={v}" for k, v in cfg.items()))
    m = info["montage"]
    preset = f" (preset {m['preset']})" if m["preset"] else ""
    print(f"  montage: {m['n_chans']} channels{preset}")
    for region, names in info["regions"].items():
        print(f"    {region:<9} {' '.join(names)}")
    return 0
