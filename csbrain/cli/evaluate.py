"""``csbrain evaluate --data STORE --model RUN_DIR``: metrics of a saved model on a store split.

Prints the metrics as JSON (``--out FILE`` also writes them). ``--set split=test|val|train|all``
(default test: the run's own seeded test split when STORE is its training data, else the
store's split labels), ``--set batch_size=N``, ``--set device=cpu``.
"""

from __future__ import annotations

import argparse
import json

from csbrain.cli._common import add_config_options


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate a fine-tuned model on a store split",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, metavar="STORE", help="labelled window store")
    p.add_argument("--model", required=True, metavar="RUN_DIR", help="run or model folder")
    p.add_argument("--out", metavar="FILE.json", help="also write the metrics here")
    add_config_options(p, "options")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from csbrain._io import check_writable
    from csbrain.configio import load_config
    from csbrain.engine.metrics import save_metrics
    from csbrain.eval.config import InferenceConfig
    from csbrain.eval.evaluate import evaluate

    cfg = load_config(InferenceConfig, args.config, args.overrides)
    if args.out:
        check_writable(args.out)  # before the evaluation, not after it
    metrics = evaluate(args.model, args.data, cfg)
    if args.out:
        save_metrics(args.out, metrics)
    print(json.dumps(metrics, indent=2))
    return 0
