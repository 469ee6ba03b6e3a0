"""Montage-dependent index tensors of the backbone, precomputed once per montage.

No weight depends on the montage: the same weights serve any channel set. What does depend on
it (channel permutation, circular-neighbour indices of the region convolutions, region-mean
averaging matrix, inter-region attention mask) is computed here with numpy, vectorised, and held
as non-persistent buffers so ``.to(device)`` moves them and state dicts never contain them.
(:func:`ring_taps`: the same rings as gathers, for the fused CPU kernels.)
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from csbrain.montage import N_REGIONS, Montage


def _positions_in_region(sorted_regions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per sorted slot: region start slot, region size, position inside the region."""
    regions = np.asarray(sorted_regions)
    sizes = np.bincount(regions, minlength=N_REGIONS)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    start = starts[regions]
    return start, sizes[regions], np.arange(len(regions)) - start


def neighbour_index(sorted_regions: Sequence[int], kernel_size: int) -> np.ndarray:
    """Circular neighbours of every sorted slot inside its region.

    Returns
    -------
    index : ndarray, shape (C, kernel_size)
        ``index[c, j]`` is the slot at offset ``j - kernel_size // 2`` from ``c`` around the
        region's ring, or ``C`` (a zero slot appended by the caller) where the released code
        zero-pads: regions with a single electrode.
    """
    start, size, pos = _positions_in_region(np.asarray(sorted_regions))
    offsets = np.arange(kernel_size) - kernel_size // 2
    idx = start[:, None] + (pos[:, None] + offsets[None, :]) % size[:, None]
    single = (size == 1)[:, None] & (offsets != 0)[None, :]
    return np.where(single, len(start), idx)


@functools.lru_cache(maxsize=64)
def ring_taps(sorted_regions: tuple[int, ...], k: int
              ) -> tuple[tuple[torch.Tensor | None, ...], ...]:
    """Per tap ``j`` of a size-``k`` kernel: ``(src, valid, inv, inv_valid)``: ``src`` ``(C,)``
    the slot tap ``j`` of each slot reads, ``inv`` the slot whose tap ``j`` reads it (each tap
    is a permutation inside multi-electrode regions); ``valid`` ``(C, 1, 1)`` zeroes the taps of
    single-electrode regions (``None``: all valid); all ``None`` for the centre tap."""
    nb = neighbour_index(sorted_regions, k).T                    # (k, C), C = zero slot
    C = nb.shape[1]
    valid = nb < C
    src = np.where(valid, nb, np.arange(C)[None, :])
    taps = []
    for j in range(k):
        inv, inv_valid = np.arange(C), np.zeros(C, dtype=bool)
        inv[src[j, valid[j]]], inv_valid[src[j, valid[j]]] = np.flatnonzero(valid[j]), True
        masks = [None if valid.all() else torch.from_numpy(v).float()[:, None, None]
                 for v in (valid[j], inv_valid)]
        taps.append((None,) * 4 if j == k // 2 else
                    (torch.from_numpy(src[j]), masks[0], torch.from_numpy(inv), masks[1]))
    return tuple(taps)


def region_average_matrix(sorted_regions: Sequence[int]) -> np.ndarray:
    """(5, C) matrix: ``avg @ u`` = per-region means; rows of regions the montage lacks are 0."""
    regions = np.asarray(sorted_regions)
    onehot = (np.arange(N_REGIONS)[:, None] == regions[None, :]).astype(np.float64)
    return onehot / np.maximum(onehot.sum(axis=1, keepdims=True), 1)


def region_attention_mask(sorted_regions: Sequence[int]) -> np.ndarray:
    """(C, C) boolean mask of the inter-region attention (True = may attend).

    With ``G`` the largest region size, group ``g`` holds, from each region of size ``n``, the
    electrode at position ``g mod n``; two slots may attend iff they share a group.
    """
    _, size, pos = _positions_in_region(np.asarray(sorted_regions))
    groups = np.arange(size.max())
    member = (groups[None, :] % size[:, None]) == pos[:, None]  # (C, G)
    m = member.astype(np.int64)
    return (m @ m.T) > 0


class MontageLayout(nn.Module):
    """Buffers that tie a montage to the backbone.

    Parameters
    ----------
    montage : Montage
        A validated :class:`csbrain.montage.Montage`: ``order`` permutes the channels so that
        ``sorted_regions`` is non-decreasing.
    kernel_sizes : sequence of int
        Kernel sizes of the region convolutions.
    """

    def __init__(self, montage: Montage, kernel_sizes: Sequence[int]) -> None:
        super().__init__()
        order = np.asarray(montage.order, dtype=np.int64)
        regions = np.asarray(montage.sorted_regions, dtype=np.int64)
        self.n_chans = len(order)
        self.sorted_regions = tuple(regions.tolist())
        self.kernel_sizes = tuple(int(k) for k in kernel_sizes)
        self.register_buffer("order", torch.from_numpy(order), persistent=False)
        self.register_buffer("region_index", torch.from_numpy(regions), persistent=False)
        self.register_buffer("attn_mask", torch.from_numpy(region_attention_mask(regions)),
                             persistent=False)
        self.register_buffer("region_avg", torch.from_numpy(region_average_matrix(regions)).float(),
                             persistent=False)
        for k in self.kernel_sizes:
            self.register_buffer(f"neighbours_{k}", torch.from_numpy(neighbour_index(regions, k)),
                                 persistent=False)

    def neighbours(self, kernel_size: int) -> torch.Tensor:
        """(C, kernel_size) slot indices; value C means the zero slot."""
        return getattr(self, f"neighbours_{kernel_size}")

    def extra_repr(self) -> str:
        sizes = torch.bincount(self.region_index, minlength=N_REGIONS).tolist()
        return f"n_chans={self.n_chans}, region_sizes={sizes}"
