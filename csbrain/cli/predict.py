"""``csbrain predict RECORDING... --model RUN_DIR --out FILE.csv``: per-window predictions.

Each recording (EDF, BDF, FIF, EEGLAB, BrainVision, GDF, CNT, UEA .ts) is prepared exactly as
the model's training data (its saved preprocessing config); one CSV row per window: recording,
window, start_s, label, predicted class and class probabilities (or the regression value).
``--set windows=continuous`` tiles recordings that lack the training events. A model that
records no preprocessing takes the options directly (``--set filter.h_freq=40``), else the
defaults adapted to each file.

Continuous files are streamed: read, filtered and resampled (polyphase) in chunks of
``--chunk-s`` seconds in a background thread while the model runs, so memory does not grow with
the recording; the CSV is written row by row to a temporary file renamed at the end (an
interrupted run leaves no half-written file). ``--whole`` prepares each file whole instead.
``--bf16`` runs in bfloat16 where the CPU (AVX512_BF16 or AMX) or GPU supports it, and is
refused with one line elsewhere (emulated bfloat16 is slower than fp32).
"""

from __future__ import annotations

import argparse

from csbrain.cli._common import add_config_options, add_stream_options


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict new recordings with a fine-tuned model",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recordings", nargs="+", metavar="RECORDING", help="EEG files")
    p.add_argument("--model", required=True, metavar="RUN_DIR", help="run or model folder")
    p.add_argument("--out", required=True, metavar="FILE.csv", help="CSV to write")
    add_config_options(p, "options")
    add_stream_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from csbrain.configio import load_config
    from csbrain.eval.config import InferenceConfig, split_overrides
    from csbrain.eval.predict import predict

    options, prep = split_overrides(args.overrides)
    cfg = load_config(InferenceConfig, args.config, options)
    if args.chunk_s <= 0:
        raise ValueError(f"--chunk-s {args.chunk_s:g} must be a positive number of seconds")
    rows = predict(args.recordings, args.model, args.out, cfg, prep_overrides=prep,
                   chunk_s=args.chunk_s, bf16=args.bf16, stream=not args.whole)
    print(f"wrote {len(rows)} window predictions to {args.out}")
    return 0
