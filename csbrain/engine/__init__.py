"""What training and evaluation share, below both: run data, splits, devices and distributed
set-up, run folders, checkpoints, metrics and batched inference.

Layer: above ``models`` and ``data``, below ``train`` and ``eval`` (which never import each
other). Names are imported lazily so that ``import csbrain.engine`` needs no torch.

>>> from csbrain.engine import RunData, open_run_data
>>> data = RunData.from_arrays(x, y, ["C3", "C4", "O1", "O2"])   # x (n, 4, P, 200)
"""

from __future__ import annotations

import importlib

_LAZY = {
    "RunData": "csbrain.engine.rundata",
    "open_run_data": "csbrain.engine.rundata",
    "labelled_indices": "csbrain.engine.rundata",
    "SplitConfig": "csbrain.engine.splits",
    "split_indices": "csbrain.engine.splits",
    "holdout_indices": "csbrain.engine.splits",
    "DistInfo": "csbrain.engine.distributed",
    "setup": "csbrain.engine.distributed",
    "env_world": "csbrain.engine.distributed",
    "resolve_device": "csbrain.engine.distributed",
    "read_run_config": "csbrain.engine.rundir",
    "compute_metrics": "csbrain.engine.metrics",
    "scores_from_outputs": "csbrain.engine.metrics",
    "predict_outputs": "csbrain.engine.inference",
    "predict_windows": "csbrain.engine.inference",
    "embed_dataset": "csbrain.engine.inference",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'csbrain.engine' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
