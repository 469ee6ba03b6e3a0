"""Patch masks for masked reconstruction (spec §4).

A mask has shape ``(B, C, P)``, ``True`` = masked, and indexes the model's **sorted** channel
slots (``mask[:, i]`` is input channel ``montage.order[i]``), the convention of
:class:`csbrain.models.CSBrainForPretraining`. Use :func:`sorted_target` to bring the input
into the same order before comparing (see :mod:`csbrain.train.losses`).

Strategies (:data:`MASK_STRATEGIES`, :func:`make_mask`):

- ``random`` (released): every (sample, channel, patch) independently with probability
  ``ratio`` (:func:`bernoulli_mask`).
- ``time_block``: per sample one contiguous run of ``round(ratio * P)`` patches, the same in
  every channel (:func:`time_block_mask`).
- ``channel``: per sample ``round(ratio * C)`` whole channels, all patches
  (:func:`channel_mask`).
- ``region``: per sample whole brain regions (every sorted slot of a region), the set whose
  channel count is closest to ``ratio * C`` among the prefixes of a random order of the
  regions present (:func:`region_mask`).

The structured strategies mask at least one and leave at least one patch visible per sample
whenever the structure allows it (``P >= 2``, ``C >= 2``, two regions present). All draws come
from the given CPU generator, so masks are reproducible and resume with the generator state.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from csbrain._checks import check_float, check_option
from csbrain.train.config import MASK_STRATEGIES

__all__ = ["MASK_STRATEGIES", "make_mask", "bernoulli_mask", "time_block_mask", "channel_mask",
           "region_mask", "sorted_target", "unsort_slots"]



def bernoulli_mask(shape: tuple[int, int, int], ratio: float, *,
                   generator: torch.Generator | None = None,
                   device: torch.device | str = "cpu") -> torch.Tensor:
    """Mask every (sample, channel, patch) independently with probability ``ratio``.

    Parameters
    ----------
    shape : (B, C, P)
        Batch, channels, patches.
    ratio : float
        Masking probability in (0, 1) (released: 0.5).
    generator : torch.Generator | None
        CPU generator (reproducible and resumable masks); None uses the global one.
    device : torch.device | str
        Where the returned mask lives (drawn on the CPU, then moved).

    Returns
    -------
    mask : torch.Tensor, shape (B, C, P), bool
        Indexes sorted slots.
    """
    check_float("mask_ratio", ratio, min_value=0.0, max_value=1.0, inclusive=False)
    if len(shape) != 3:
        raise ValueError(f"shape={tuple(shape)} must be (batch, channels, patches)")
    draw = torch.rand(tuple(shape), generator=generator)
    return (draw < ratio).to(device)


def _check_shape(shape: Sequence[int], ratio: float) -> tuple[int, int, int]:
    check_float("mask_ratio", ratio, min_value=0.0, max_value=1.0, inclusive=False)
    if len(shape) != 3:
        raise ValueError(f"shape={tuple(shape)} must be (batch, channels, patches)")
    return int(shape[0]), int(shape[1]), int(shape[2])


def _count(ratio: float, n: int) -> int:
    """``round(ratio * n)`` kept in ``[1, n - 1]`` (``1`` when ``n == 1``)."""
    return max(1, min(int(round(ratio * n)), n - 1)) if n > 1 else 1


def time_block_mask(shape: tuple[int, int, int], ratio: float, *,
                    generator: torch.Generator | None = None,
                    device: torch.device | str = "cpu") -> torch.Tensor:
    """One contiguous block of ``round(ratio * P)`` patches (kept in ``[1, P - 1]``) per
    sample, the same in every channel: ``(B, C, P)`` bool. Arguments as for :func:`make_mask`."""
    B, C, P = _check_shape(shape, ratio)
    k = _count(ratio, P)
    start = (torch.rand(B, generator=generator) * (P - k + 1)).long().clamp_max(P - k)  # (B,)
    p = torch.arange(P)
    block = (p >= start[:, None]) & (p < start[:, None] + k)                            # (B, P)
    return block[:, None, :].expand(B, C, P).contiguous().to(device)


def channel_mask(shape: tuple[int, int, int], ratio: float, *,
                 generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """``round(ratio * C)`` whole channels per sample (kept in ``[1, C - 1]``), constant over
    patches: ``(B, C, P)`` bool. Arguments as for :func:`make_mask`."""
    B, C, P = _check_shape(shape, ratio)
    k = _count(ratio, C)
    rank = torch.rand(B, C, generator=generator).argsort(dim=1).argsort(dim=1)  # random ranks
    return (rank < k)[:, :, None].expand(B, C, P).contiguous().to(device)


def region_mask(shape: tuple[int, int, int], ratio: float, sorted_regions: Sequence[int], *,
                generator: torch.Generator | None = None,
                device: torch.device | str = "cpu") -> torch.Tensor:
    """Whole brain regions per sample: every sorted slot of the chosen regions, all patches.

    The regions present are put in a random order per sample; the mask takes the prefix of
    that order (at least one region, and all but one at most when two or more are present)
    whose channel count is closest to ``ratio * C``. Returns a ``(B, C, P)`` bool mask, constant
    over patches and over the slots of a region. Arguments as for :func:`make_mask`.
    """
    B, C, P = _check_shape(shape, ratio)
    regions = torch.as_tensor(list(sorted_regions), dtype=torch.long)
    if regions.shape != (C,):
        raise ValueError(f"sorted_regions has {len(regions)} entries; expected one per channel "
                         f"({C})")
    present, slot_region = torch.unique(regions, return_inverse=True)  # (R,), (C,)
    R = len(present)
    sizes = torch.bincount(slot_region, minlength=R)                     # (R,)
    perm = torch.rand(B, R, generator=generator).argsort(dim=1)          # (B, R) region order
    cum = sizes[perm].cumsum(dim=1)                                      # (B, R) channels
    n_max = R - 1 if R > 1 else 1
    err = (cum[:, :n_max].float() - ratio * C).abs()                     # (B, n_max)
    n_take = err.argmin(dim=1) + 1                                       # (B,) regions masked
    rank = perm.argsort(dim=1)                                           # (B, R) position
    chosen = rank < n_take[:, None]                                      # (B, R)
    return chosen[:, slot_region][:, :, None].expand(B, C, P).contiguous().to(device)


def make_mask(strategy: str, shape: tuple[int, int, int], ratio: float, *,
              sorted_regions: Sequence[int] | None = None,
              generator: torch.Generator | None = None,
              device: torch.device | str = "cpu") -> torch.Tensor:
    """A ``(B, C, P)`` boolean mask (sorted slots) drawn with ``strategy``.

    Parameters
    ----------
    strategy : {"random", "time_block", "channel", "region"}
        See the module docstring.
    shape : (B, C, P)
    ratio : float
        Masking ratio in (0, 1).
    sorted_regions : sequence of int, length C | None
        Region of each sorted slot (``model.backbone.layout.sorted_regions``,
        ``montage.sorted_regions``); required by ``region``.
    generator : torch.Generator | None
    device : torch.device | str

    Returns
    -------
    mask : torch.Tensor, shape (B, C, P), bool
    """
    check_option("mask_strategy", strategy, MASK_STRATEGIES)
    if strategy == "random":
        return bernoulli_mask(shape, ratio, generator=generator, device=device)
    if strategy == "time_block":
        return time_block_mask(shape, ratio, generator=generator, device=device)
    if strategy == "channel":
        return channel_mask(shape, ratio, generator=generator, device=device)
    if sorted_regions is None:
        raise ValueError("mask_strategy='region' needs sorted_regions (the region of each "
                         "sorted slot, model.backbone.layout.sorted_regions)")
    return region_mask(shape, ratio, sorted_regions, generator=generator, device=device)


def sorted_target(x: torch.Tensor, order: torch.Tensor | list[int]) -> torch.Tensor:
    """The reconstruction target: input ``x`` ``(B, C, P, S)`` permuted into sorted order.

    Parameters
    ----------
    x : torch.Tensor, shape (B, C, P, S)
        Input channel order (as fed to the model).
    order : tensor or list of int, length C
        The model's channel permutation (``montage.order``; slot ``i`` holds channel
        ``order[i]``).

    Returns
    -------
    torch.Tensor, shape (B, C, P, S)
        ``x[:, order]``, comparable slot by slot with the model's reconstruction.
    """
    order = torch.as_tensor(order, dtype=torch.long, device=x.device)
    return x[:, order]


def unsort_slots(y: torch.Tensor, order: torch.Tensor | list[int]) -> torch.Tensor:
    """Inverse of :func:`sorted_target`: sorted slots ``(B, C, ...)`` back to input order."""
    order = torch.as_tensor(order, dtype=torch.long, device=y.device)
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(len(order), device=y.device)
    return y[:, inverse]
