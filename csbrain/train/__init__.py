"""Training: one loop for masked-reconstruction pretraining and fine-tuning / probing.

>>> from csbrain.train import FinetuneConfig, finetune, load_run_config
>>> cfg = load_run_config(FinetuneConfig, None, ["model.preset=tiny", "epochs=5"])
>>> result = finetune(cfg, "store/", "runs/ft1")        # run folder: see csbrain.engine.rundir
>>> result.metrics["test"]["balanced_accuracy"]

Windows held in memory are a :class:`csbrain.engine.RunData`. Launch the same code on N
processes with ``torchrun --nproc_per_node=N -m csbrain finetune ...``.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "PretrainConfig": "csbrain.train.config",
    "FinetuneConfig": "csbrain.train.config",
    "SplitConfig": "csbrain.train.config",
    "load_run_config": "csbrain.train.config",
    "pretrain": "csbrain.train.runs",
    "finetune": "csbrain.train.runs",
    "RunResult": "csbrain.train.runs",
    "train_loop": "csbrain.train.loop",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'csbrain.train' has no attribute {name!r}")
