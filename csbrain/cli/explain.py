"""``csbrain explain --model RUN --data STORE|FILE --out DIR``: what a classifier looks at.

Integrated gradients, Grad-CAM on a token map, occlusion and the attention weights, per
class, over channels, regions and patches: topomaps, region x time maps, attention matrices,
``explanations.json`` (every plotted number) and ``index.html``. Prints the time per window.
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="attributions and attention maps of a classifier",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, metavar="RUN_DIR", help="run or model folder")
    p.add_argument("--data", required=True, metavar="STORE|FILE",
                   help="window store or EEG file")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--split", default="test", help="store split (train/val/test/all)")
    p.add_argument("--method", nargs="+", default=["ig", "gradcam", "occlusion", "attention"],
                   choices=["ig", "gradcam", "occlusion", "attention"])
    p.add_argument("--max-windows", type=int, default=None, help="first N windows only")
    p.add_argument("--ig-steps", type=int, default=32)
    p.add_argument("--gradcam-layer", default="embedding", choices=["embedding", "output"],
                   help="Grad-CAM's token map: the patch embedding (one electrode per token) "
                        "or the backbone's output (mixed across electrodes)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cpu")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from csbrain.explain import explain

    s = explain(args.model, args.data, args.out, methods=args.method, split=args.split,
                max_windows=args.max_windows, ig_steps=args.ig_steps,
                gradcam_layer=args.gradcam_layer,
                batch_size=args.batch_size, device=args.device, progress=True)
    times = ", ".join(f"{m} {t * 1000:.1f} ms" for m, t in s["seconds_per_window"].items())
    print(f"explained {s['n_windows']} windows ({times} per window); wrote {args.out}")
    return 0
