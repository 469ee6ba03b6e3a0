"""Seeds of a run: the global RNGs, and the independent streams derived from the run seed.

A run has one ``seed``. Streams that must not depend on how much the global RNGs were used
(the loader's shuffling per epoch, the pretraining masks per rank, the fixed validation masks)
get their own generator seeded with :func:`stream_seed`, so a resumed run draws what an
uninterrupted one would.
"""

from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["SEED_STRIDE", "seed_everything", "stream_seed"]

#: Multiplier of the run seed in :func:`stream_seed` (a prime).
SEED_STRIDE = 1_000_003


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def stream_seed(seed: int, offset: int) -> int:
    """Seed of stream ``offset`` of run seed ``seed`` (``seed * SEED_STRIDE + offset``)."""
    return seed * SEED_STRIDE + offset
