"""Montage-dependent index tensors of the backbone, precomputed once per montage.

No weight depends on the montage: the same weights serve any channel set. What does depend on
it (channel permutation, circular-neighbour indices of the region convolutions, region-mean
averaging matrix, inter-region attention mask) is computed here with numpy, vectorised, and held
as non-persistent buffers so ``.to(device)`` moves them and state dicts never contain them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

N_REGIONS = 5


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


def region_average_matrix(sorted_regions: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(5, C) matrices: ``avg @ u`` = per-region means, ``onehot[r, c]`` = 1 if slot c is in r.

    Rows of regions the montage lacks are zero.
    """
    regions = np.asarray(sorted_regions)
    onehot = (np.arange(N_REGIONS)[:, None] == regions[None, :]).astype(np.float64)
    return onehot / np.maximum(onehot.sum(axis=1, keepdims=True), 1), onehot


def ring_taps(sorted_regions: Sequence[int], kernel_size: int) -> dict[str, np.ndarray]:
    """Ring neighbours per tap, for the matmul-first region convolution.

    Returns ``src`` ``(k, C)``: slot read by tap ``j`` of slot ``c`` (itself where the released
    code zero-pads, see ``valid``); ``valid`` ``(k, C)``; ``inv`` ``(k, C)``: the slot whose tap
    ``j`` reads ``c`` (each tap is a permutation inside multi-electrode regions), ``inv_valid``.
    """
    nb = neighbour_index(sorted_regions, kernel_size).T          # (k, C)
    C = nb.shape[1]
    valid = nb < C
    src = np.where(valid, nb, np.arange(C)[None, :])
    inv, inv_valid = np.tile(np.arange(C), (kernel_size, 1)), np.zeros_like(valid)
    for j in range(kernel_size):
        inv[j, src[j, valid[j]]] = np.flatnonzero(valid[j])
        inv_valid[j, src[j, valid[j]]] = True
    return {"src": src, "valid": valid, "inv": inv, "inv_valid": inv_valid}


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
    order : sequence of int, length C
        Channel permutation (``x[:, order]`` groups regions).
    sorted_regions : sequence of int, length C
        Region id of each slot after the permutation; non-decreasing, values in 0..4.
    kernel_sizes : sequence of int
        Kernel sizes of the region convolutions.
    """

    def __init__(self, order: Sequence[int], sorted_regions: Sequence[int],
                 kernel_sizes: Sequence[int]) -> None:
        super().__init__()
        order = np.asarray(order, dtype=np.int64)
        regions = np.asarray(sorted_regions, dtype=np.int64)
        if order.shape != regions.shape or order.ndim != 1 or len(order) == 0:
            raise ValueError(f"order (length {order.size}) and sorted_regions (length "
                             f"{regions.size}) must be non-empty and of equal length")
        if sorted(order.tolist()) != list(range(len(order))):
            raise ValueError(f"order={order.tolist()} is not a permutation of 0..{len(order) - 1}")
        if regions.min() < 0 or regions.max() >= N_REGIONS:
            raise ValueError(f"sorted_regions={regions.tolist()} must hold region ids "
                             f"0..{N_REGIONS - 1}")
        if np.any(np.diff(regions) < 0):
            raise ValueError(f"sorted_regions={regions.tolist()} must be non-decreasing "
                             "(regions contiguous in ascending id)")
        self.n_chans = len(order)
        self.kernel_sizes = tuple(int(k) for k in kernel_sizes)
        self.register_buffer("order", torch.from_numpy(order), persistent=False)
        self.register_buffer("region_index", torch.from_numpy(regions), persistent=False)
        mask = torch.from_numpy(region_attention_mask(regions))
        self.register_buffer("attn_mask", mask, persistent=False)
        self.register_buffer("attn_bias", torch.zeros(mask.shape).masked_fill(~mask, float("-inf")),
                             persistent=False)                    # additive form of attn_mask
        avg, onehot = region_average_matrix(regions)
        self.register_buffer("region_avg", torch.from_numpy(avg).float(), persistent=False)
        self.register_buffer("region_onehot", torch.from_numpy(onehot).float(), persistent=False)
        self.all_taps_valid = bool(np.all(np.bincount(regions, minlength=N_REGIONS) != 1))
        for k in self.kernel_sizes:
            self.register_buffer(f"neighbours_{k}", torch.from_numpy(neighbour_index(regions, k)),
                                 persistent=False)
            for name, value in ring_taps(regions, k).items():
                t = torch.from_numpy(value)
                t = t.float()[..., None, None] if value.dtype == bool else t   # (k, C, 1, 1) masks
                self.register_buffer(f"ring_{name}_{k}", t, persistent=False)

    def neighbours(self, kernel_size: int) -> torch.Tensor:
        """(C, kernel_size) slot indices; value C means the zero slot."""
        return getattr(self, f"neighbours_{kernel_size}")

    def ring(self, kernel_size: int, tap: int, inverse: bool = False):
        """(index ``(C,)``, validity ``(C, 1, 1)``) of one tap, see :func:`ring_taps`; ``None``
        for the identity (centre tap) and for an all-valid mask."""
        if tap == kernel_size // 2:
            return None, None
        idx = getattr(self, f"ring_{'inv' if inverse else 'src'}_{kernel_size}")[tap]
        valid = getattr(self, f"ring_{'inv_valid' if inverse else 'valid'}_{kernel_size}")[tap]
        return idx, None if self.all_taps_valid else valid

    def extra_repr(self) -> str:
        sizes = torch.bincount(self.region_index, minlength=N_REGIONS).tolist()
        return f"n_chans={self.n_chans}, region_sizes={sizes}"
