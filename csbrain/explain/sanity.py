"""A synthetic task for sanity checks of attribution methods (Adebayo et al. 2018): the class
signal lives in one region only, so a faithful method ranks that region first.

Used by ``tests/explain`` and ``benchmarks/gradcam_localisation.py``.

Shapes: n windows, C = 8 channels, P = 2 one-second patches of 200 samples.
"""

from __future__ import annotations

import numpy as np
import torch

from csbrain.config import CSBrainConfig
from csbrain.models import CSBrainForClassification

__all__ = ["CHANNELS", "SIGNAL", "SIGNAL_REGION", "one_region_task", "tiny_classifier",
           "train_on_task"]

CHANNELS = ["Fp1", "F4", "C3", "T7", "T8", "P4", "O1", "O2"]
#: The channels that carry the class signal, and their region.
SIGNAL = ("O1", "O2")
SIGNAL_REGION = "occipital"


def one_region_task(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows ``x`` ``(n, C, P, 200)`` and labels ``y`` ``(n,)``: class 1 adds a 10 Hz wave
    (unit amplitude, random phase) on O1 and O2 to noise of std 0.3; class 0 is noise only."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    t = np.arange(2 * 200) / 200.0
    x = rng.normal(scale=0.3, size=(n, len(CHANNELS), 400))
    for c in SIGNAL:
        x[:, CHANNELS.index(c)] += y[:, None] * np.sin(2 * np.pi * 10 * t + rng.uniform(0, 6))
    return x.reshape(n, len(CHANNELS), 2, 200).astype(np.float32), y


def tiny_classifier(seed: int) -> CSBrainForClassification:
    """A ``tiny``-preset classifier with a mean head, initialised from ``seed``."""
    torch.manual_seed(seed)
    return CSBrainForClassification(CHANNELS, CSBrainConfig.from_preset("tiny"), n_outputs=2,
                                    head="mean")


def train_on_task(seed: int, steps: int = 40) -> tuple[CSBrainForClassification, float]:
    """A :func:`tiny_classifier` trained ``steps`` AdamW steps (batches of 16, lr 2e-3) on
    :func:`one_region_task` (64 windows, seed 0); returns it in eval mode and its accuracy on
    24 held-out windows (seed 1)."""
    model = tiny_classifier(seed)
    x, y = (torch.from_numpy(a) for a in one_region_task(64, 0))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    model.train()
    for _ in range(steps):
        i = torch.randint(0, len(x), (16,))
        loss = torch.nn.functional.cross_entropy(model(x[i]), y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    xv, yv = one_region_task(24, 1)
    with torch.no_grad():
        acc = float((model(torch.from_numpy(xv)).argmax(1).numpy() == yv).mean())
    return model, acc
