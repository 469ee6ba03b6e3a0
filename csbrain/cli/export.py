"""``csbrain export MODEL --format onnx|torchscript --out FILE``: a deployable file.

Fixed montage and window length, dynamic batch; the file is run once and compared with eager
PyTorch (max |difference| printed; beyond ``--atol`` it is an error).
"""

from __future__ import annotations

import argparse

from csbrain.cli._common import add_montage_options, montage_option


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a model to ONNX or TorchScript",
                       description=__doc__)
    p.add_argument("model", help="model or run folder, hub id (org/name) or released .pth")
    p.add_argument("--format", default="onnx", choices=["onnx", "torchscript"])
    p.add_argument("--out", required=True, metavar="FILE", help="file to write")
    p.add_argument("--n-times", type=int, default=None, metavar="N",
                   help="samples per window at 200 Hz (default: the model's)")
    p.add_argument("--sequence-length", type=int, default=None, metavar="L",
                   help="windows per sequence of a sequence model (default: its folder's)")
    p.add_argument("--atol", type=float, default=1e-4, help="parity tolerance (default 1e-4)")
    add_montage_options(p, " (released .pth only); default: TUEG")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from csbrain.models.export import export_model

    montage = montage_option(args)
    res = export_model(args.model, args.out, format=args.format, n_times=args.n_times,
                       sequence_length=args.sequence_length, atol=args.atol,
                       **({"montage": montage} if montage is not None else {}))
    print(f"wrote {res.path} ({res.format}, input {res.input_shape}); max |difference| with "
          f"eager PyTorch {res.max_abs_diff:.3g} (outputs up to {res.max_abs_output:.3g})")
    return 0
