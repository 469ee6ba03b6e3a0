"""Random patch masks for masked reconstruction (spec §4).

A mask has shape ``(B, C, P)``, ``True`` = masked, and indexes the model's **sorted** channel
slots (``mask[:, i]`` is input channel ``montage.order[i]``), the convention of
:class:`csbrain.models.CSBrainForPretraining`. Use :func:`sorted_target` to bring the input
into the same order before comparing (see :mod:`csbrain.train.losses`).
"""

from __future__ import annotations

import torch

from csbrain._checks import check_float

__all__ = ["bernoulli_mask", "sorted_target", "unsort_slots"]


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
