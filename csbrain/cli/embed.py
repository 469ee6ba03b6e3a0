"""``csbrain embed RECORDING... --model RUN_DIR --out FILE``: backbone embeddings per window.

``FILE.npy``: the array; ``FILE.npz``: ``embeddings``, ``recording``, ``window``, ``start_s``.
``--set pooled=false`` keeps every token ``(n, C, P, D)`` (sorted channel order) instead of
the mean ``(n, D)``. Recordings are prepared with the model's recorded preprocessing; a
released ``.pth`` records none: give the options directly (``--set filter.h_freq=40 --set
windows.length_s=4``) or a file (``--set prep_config=PREP.toml``), else the defaults, whose
filters adapt to each file's sampling rate.

Continuous files are streamed in chunks (``--chunk-s``, ``--whole``, ``--bf16``: see
``csbrain predict --help``); the output appears only when complete.
"""

from __future__ import annotations

import argparse

from csbrain.cli._common import add_config_options, add_stream_options


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("embed", help="embed new recordings with a CSBrain backbone",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recordings", nargs="+", metavar="RECORDING", help="EEG files")
    p.add_argument("--model", required=True, metavar="RUN_DIR",
                   help="run or model folder, or a released .pth")
    p.add_argument("--out", required=True, metavar="FILE", help=".npy or .npz to write")
    add_config_options(p, "options")
    add_stream_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from csbrain.configio import load_config
    from csbrain.eval.config import InferenceConfig, split_overrides
    from csbrain.eval.predict import embed

    options, prep = split_overrides(args.overrides)
    cfg = load_config(InferenceConfig, args.config, options)
    if args.chunk_s <= 0:
        raise ValueError(f"--chunk-s {args.chunk_s:g} must be a positive number of seconds")
    info = embed(args.recordings, args.model, args.out, cfg, prep_overrides=prep,
                 chunk_s=args.chunk_s, bf16=args.bf16, stream=not args.whole)
    print(f"wrote embeddings {tuple(info['shape'])} of {len(info['recordings'])} recording(s) "
          f"to {info['out']}")
    return 0
