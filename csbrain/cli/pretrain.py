"""``csbrain pretrain --data STORE [STORE ...] --out RUN_DIR``: masked-reconstruction
pretraining on one store or a corpus of several (any channel lists and window lengths: batches
are drawn group by group; ``--set source_weighting=balanced`` weights the stores equally).

Run config: ``--config FILE`` (TOML / YAML / JSON, keys of csbrain.train.PretrainConfig) and
``--set key=value`` (repeatable, dotted keys: ``--set model.n_layers=4 --set mask_ratio=0.5``).
On several processes: ``torchrun --nproc_per_node=N -m csbrain pretrain ...``.
"""

from __future__ import annotations

import argparse
import json

from csbrain.cli._common import add_config_options


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="pretrain CSBrain by masked patch reconstruction",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, nargs="+", metavar="STORE",
                   help="window store(s) (csbrain prepare)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder to create")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR")
    add_config_options(p, "run config")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from csbrain.engine.distributed import env_world
    from csbrain.train import PretrainConfig, load_run_config, pretrain

    cfg = load_run_config(PretrainConfig, args.config, args.overrides)
    data = args.data[0] if len(args.data) == 1 else args.data
    result = pretrain(cfg, data, args.out, resume=args.resume)
    if env_world()[0] == 0:
        print(f"pretraining finished after {result.state.step} steps: {result.run_dir}")
        print(json.dumps(result.metrics, indent=2))
    return 0
