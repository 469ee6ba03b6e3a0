"""csbrain: CSBrain, a cross-scale spatiotemporal EEG foundation model.

The heavy parts (torch models) are imported lazily so that ``csbrain.montage`` and
``csbrain.units`` work without a deep-learning stack.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "CSBrainConfig": "csbrain.config",
    "Montage": "csbrain.montage",
    "list_presets": "csbrain.montage",
    "CSBrain": "csbrain.models",
    "CSBrainForPretraining": "csbrain.models",
    "CSBrainForClassification": "csbrain.models",
    "CSBrainForRegression": "csbrain.models",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'csbrain' has no attribute {name!r}")
