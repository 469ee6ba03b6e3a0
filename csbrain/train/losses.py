"""Training losses (spec §4, §5).

Pretraining: mean squared error over masked patches between the reconstruction and the input,
**both in the model's sorted channel order** (:func:`csbrain.train.masking.sorted_target`).
The released loss compared the sorted reconstruction with the *unsorted* input, so most masked
targets belonged to another channel; ``tests/train/test_losses.py`` shows the difference.

Supervised: cross-entropy with label smoothing (multi-class), one-logit BCE (binary), MSE
(regression).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from csbrain._checks import check_option

__all__ = ["masked_mse", "supervised_loss"]


def masked_mse(recon: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, *,
               n_masked: torch.Tensor | float | None = None) -> torch.Tensor:
    """Mean squared error over the masked patches.

    Parameters
    ----------
    recon : torch.Tensor, shape (B, C, P, S)
        Reconstruction, sorted channel order.
    target : torch.Tensor, shape (B, C, P, S)
        Input in the same (sorted) order.
    mask : torch.Tensor, shape (B, C, P), bool
        True = masked (the patches the loss is computed on).
    n_masked : tensor or float | None
        Number of masked patches to divide by; default ``mask.sum()``. Data-parallel training
        passes the global count divided by the world size, so that averaging the ranks'
        gradients gives exactly the gradient of the global mean.

    Returns
    -------
    torch.Tensor, scalar float32
        0 (with a gradient path) when nothing is masked.
    """
    if recon.shape != target.shape:
        raise ValueError(f"recon has shape {tuple(recon.shape)} but target has "
                         f"{tuple(target.shape)}; expected both (batch, channels, patches, "
                         f"samples)")
    if mask.shape != recon.shape[:3]:
        raise ValueError(f"mask has shape {tuple(mask.shape)}; expected {tuple(recon.shape[:3])}")
    m = mask.to(torch.float32).unsqueeze(-1)
    sq = (recon.float() - target.float()).pow(2) * m
    count = mask.sum() if n_masked is None else n_masked
    denom = torch.as_tensor(count, dtype=torch.float32, device=sq.device).clamp_min(1.0)
    return sq.sum() / (denom * recon.shape[-1])


def supervised_loss(out: torch.Tensor, y: torch.Tensor, task: str, *,
                    label_smoothing: float = 0.0) -> torch.Tensor:
    """Loss of a classification / regression head.

    Parameters
    ----------
    out : torch.Tensor
        ``(B, n_classes)`` logits (multiclass), ``(B, 1)`` logit (binary) or ``(B, n_targets)``
        predictions (regression).
    y : torch.Tensor
        ``(B,)`` int class ids (multiclass, binary 0/1) or ``(B,)`` / ``(B, n_targets)`` floats.
    task : {"multiclass", "binary", "regression"}
    label_smoothing : float
        Multi-class only.

    Returns
    -------
    torch.Tensor, scalar float32
    """
    check_option("task", task, ["multiclass", "binary", "regression"])
    out = out.float()
    if task == "multiclass":
        return F.cross_entropy(out, y.long(), label_smoothing=label_smoothing)
    if task == "binary":
        if out.shape[-1] != 1:
            raise ValueError(f"a binary head has one logit; got outputs of shape "
                             f"{tuple(out.shape)}")
        return F.binary_cross_entropy_with_logits(out[:, 0], y.float())
    y = y.float().reshape(out.shape[0], -1)
    if y.shape != out.shape:
        raise ValueError(f"regression targets of shape {tuple(y.shape)} do not match outputs "
                         f"{tuple(out.shape)}")
    return F.mse_loss(out, y)
