"""``csbrain finetune --data STORE --out RUN_DIR [--init MODEL]``: fine-tune or probe.

Trains a classifier (multi-class, binary) or regressor on a labelled store with a seeded
train / val / test split, keeps the checkpoint with the best validation metric and evaluates it
once on the test split (``RUN_DIR/metrics.json``). ``--init`` takes a csbrain model or run folder
or a released ``.pth``; without it the model starts from scratch. Run config: ``--config FILE``
and ``--set key=value`` (keys of csbrain.train.FinetuneConfig, e.g. ``--set
freeze_backbone=true --set head=mean --set split.by=recording``).
"""

from __future__ import annotations

import argparse
import json

from csbrain.cli._common import add_config_options


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("finetune", help="fine-tune / probe CSBrain on a labelled store",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, metavar="STORE", help="labelled window store")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder to create")
    p.add_argument("--init", metavar="MODEL_DIR_OR_RELEASED_PTH",
                   help="initial backbone (overrides the config's init)")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR")
    add_config_options(p, "run config")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from csbrain.engine.distributed import env_world
    from csbrain.train import FinetuneConfig, finetune, load_run_config

    overrides = list(args.overrides) + ([f"init={args.init}"] if args.init else [])
    cfg = load_run_config(FinetuneConfig, args.config, overrides)
    result = finetune(cfg, args.data, args.out, resume=args.resume)
    if env_world()[0] == 0:
        m = result.metrics
        kept = ("the last model" if m["select_metric"] == "last" else
                f"selected on val {m['select_metric']} at step {m['best_step']}")
        print(f"fine-tuning finished after {result.state.step} steps ({m['task']}, {kept}): "
              f"{result.run_dir}")
        print(json.dumps({k: m.get(k) for k in ("val", "test") if k in m}, indent=2))
    return 0
