"""Occlusion importance: how much a trained model relies on each channel and each region.

A channel (or all channels of a region) is replaced by zeros in every test window and the drop
of balanced accuracy is recorded. Zero is the mean of band-passed EEG, so this removes the
channel's information without shifting the input distribution's mean.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from csbrain.montage import REGION_NAMES


def _balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    from sklearn.metrics import balanced_accuracy_score

    return float(balanced_accuracy_score(y, pred))


def occlusion_importance(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
                         y: np.ndarray, regions: list[int] | tuple[int, ...]
                         ) -> tuple[np.ndarray, dict[str, float]]:
    """Per-channel and per-region drop of balanced accuracy when occluded.

    Parameters
    ----------
    predict : callable
        Maps windows ``(n, C, P, S)`` to predicted labels ``(n,)``.
    x : ndarray, shape (n, C, P, S)
        Test windows, channels in the montage's input order.
    y : ndarray, shape (n,)
        True labels.
    regions : sequence of int, length C
        Region id of each input channel.

    Returns
    -------
    channel_drop : ndarray, shape (C,)
    region_drop : dict
        Region name -> drop, for the regions present.
    """
    base = _balanced_accuracy(y, predict(x))
    C = x.shape[1]
    channel_drop = np.zeros(C)
    for c in range(C):
        occluded = x.copy()
        occluded[:, c] = 0.0
        channel_drop[c] = base - _balanced_accuracy(y, predict(occluded))
    region_drop = {}
    regions = np.asarray(regions)
    for r in sorted(set(regions.tolist())):
        occluded = x.copy()
        occluded[:, regions == r] = 0.0
        region_drop[REGION_NAMES[r]] = base - _balanced_accuracy(y, predict(occluded))
    return channel_drop, region_drop
