"""Does Grad-CAM find the one informative region? Each token map, over several training seeds.

What it measures
----------------
A synthetic two-class task whose class signal lives in one region only (class 1: a 10 Hz wave on
O1 and O2; class 0: noise; 8 channels, 2 one-second patches; the task of
``tests/explain/test_explain.py``, :mod:`csbrain.explain.sanity`). For each seed a tiny CSBrain
(``preset="tiny"``, mean head) is trained for 40 AdamW steps and kept if its held-out accuracy
is at least 0.9; then Grad-CAM (:func:`csbrain.explain.attribution.grad_cam`) is computed on
every token map of
:data:`~csbrain.explain.attribution.GRADCAM_LAYERS` for the held-out class-1 windows, averaged
per region as ``csbrain explain`` does, and the region ranked first is recorded. The README's
"Explain a model" section quotes the counts.

Run
---
::

    .venv/bin/python benchmarks/gradcam_localisation.py            # seeds 0-6, about 2 min
    .venv/bin/python benchmarks/gradcam_localisation.py --seeds 3
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from csbrain.explain import explain_windows, summarise
from csbrain.explain.attribution import GRADCAM_LAYERS
from csbrain.explain.sanity import SIGNAL_REGION, one_region_task, train_on_task


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=7, help="training seeds 0 .. N-1")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    xv, yv = one_region_task(24, 1)
    rows = []
    for seed in range(args.seeds):
        model, acc = train_on_task(seed)
        row = {"seed": seed, "accuracy": acc, "first": {}}
        if acc >= 0.9:
            for layer in GRADCAM_LAYERS:
                raw = explain_windows(model, xv, yv, methods=("gradcam",), gradcam_layer=layer)
                region = summarise(model, raw, yv, ["noise", "alpha"])[
                    "methods"]["gradcam"]["alpha"]["region"]
                row["first"][layer] = max(region, key=region.get)
        rows.append(row)
        print(f"seed {seed}: accuracy {acc:.2f}; first region "
              + ", ".join(f"{k} {v}" for k, v in row["first"].items()), flush=True)
    kept = [r for r in rows if r["first"]]
    counts = {layer: sum(r["first"][layer] == SIGNAL_REGION for r in kept)
              for layer in GRADCAM_LAYERS}
    for layer, k in counts.items():
        print(f"{layer}: {SIGNAL_REGION} first for {k} of {len(kept)} trained models")
    out = {"rows": rows, "counts": counts, "n_models": len(kept)}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
