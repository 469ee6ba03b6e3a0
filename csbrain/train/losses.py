"""Training losses (spec §4, §5).

Pretraining: mean squared error over masked patches between the reconstruction and the input,
**both in the model's sorted channel order** (:func:`csbrain.train.masking.sorted_target`).
The released loss compared the sorted reconstruction with the *unsorted* input, so most masked
targets belonged to another channel; ``tests/train/test_losses.py`` shows the difference.

Reconstruction targets (:data:`TARGETS`, :func:`reconstruction_loss`), all on masked patches:

- ``waveform`` (released): the patch itself.
- ``normalized``: each patch standardised by its own mean and standard deviation over its
  ``S`` samples (MAE's normalised-pixel loss, :func:`normalize_patches`).
- ``spectral``: the log-amplitude spectrum of each patch, ``log(|rfft(patch)| + eps)`` over
  the ``S // 2 + 1`` bins (orthonormal FFT, so amplitudes are on the scale of the samples),
  standardised per bin with the mean and standard deviation of all patches of the batch,
  computed without gradient (:func:`spectral_target`). Predicted by the model's spectral head.
- ``waveform+spectral``: waveform MSE plus ``spectral_weight`` times the spectral MSE.

Anti-collapse: :func:`vicreg_loss`, the variance and covariance terms of VICReg (Bardes et al.
2022) on mean-pooled features.

Supervised: cross-entropy with label smoothing (multi-class), one-logit BCE (binary), MSE
(regression).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from csbrain._checks import check_option
from csbrain.engine.sequences import flatten_sequences
from csbrain.train.config import TARGETS

__all__ = ["TARGETS", "masked_mse", "normalize_patches", "log_spectrum", "spectral_target",
           "reconstruction_loss", "vicreg_loss", "supervised_loss"]


#: Added to the per-patch variance (normalised target), to the amplitude before the log and to
#: the per-bin standard deviation (spectral target).
EPS = 1e-6


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


def normalize_patches(target: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Each patch standardised over its samples: ``(t - mean) / sqrt(var + eps)``.

    Parameters
    ----------
    target : torch.Tensor, shape (B, C, P, S)
    eps : float

    Returns
    -------
    torch.Tensor, shape (B, C, P, S), float32
        Zero mean and (population) standard deviation 1 over the last axis (0 for a constant
        patch).
    """
    t = target.float()
    mean = t.mean(dim=-1, keepdim=True)
    var = t.var(dim=-1, unbiased=False, keepdim=True)
    return (t - mean) / (var + eps).sqrt()


def log_spectrum(target: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """``log(|rfft(patch)| + eps)`` per patch (orthonormal FFT): ``(B, C, P, S)`` ->
    ``(B, C, P, S // 2 + 1)`` float32."""
    return torch.log(torch.fft.rfft(target.float(), dim=-1, norm="ortho").abs() + eps)


@torch.no_grad()
def spectral_target(target: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """The spectral target: :func:`log_spectrum` standardised per frequency bin.

    Mean and standard deviation of each bin are taken over all ``B * C * P`` patches of the
    batch (no gradient), so every bin weighs alike whatever the EEG's 1/f power law.

    Parameters
    ----------
    target : torch.Tensor, shape (B, C, P, S)

    Returns
    -------
    torch.Tensor, shape (B, C, P, S // 2 + 1), float32
    """
    spec = log_spectrum(target, eps)
    flat = spec.reshape(-1, spec.shape[-1])                               # (B*C*P, F)
    mean = flat.mean(dim=0)
    std = flat.std(dim=0, unbiased=False) if len(flat) > 1 else torch.ones_like(mean)
    return (spec - mean) / (std + eps)


def reconstruction_loss(target_kind: str, target: torch.Tensor, mask: torch.Tensor, *,
                        waveform: torch.Tensor | None = None,
                        spectral: torch.Tensor | None = None, spectral_weight: float = 1.0,
                        n_masked: torch.Tensor | float | None = None) -> torch.Tensor:
    """Masked reconstruction loss for ``target_kind`` (see the module docstring).

    Parameters
    ----------
    target_kind : {"waveform", "normalized", "spectral", "waveform+spectral"}
    target : torch.Tensor, shape (B, C, P, S)
        The input in sorted channel order (:func:`csbrain.train.masking.sorted_target`).
    mask : torch.Tensor, shape (B, C, P), bool
        True = masked.
    waveform : torch.Tensor, shape (B, C, P, S) | None
        Output of the reconstruction head (needed unless ``target_kind == "spectral"``).
    spectral : torch.Tensor, shape (B, C, P, S // 2 + 1) | None
        Output of the spectral head (needed by the spectral targets).
    spectral_weight : float
        Weight of the spectral term of ``waveform+spectral``.
    n_masked : tensor or float | None
        As for :func:`masked_mse`.

    Returns
    -------
    torch.Tensor, scalar float32
    """
    check_option("target", target_kind, TARGETS)
    need_wave = target_kind != "spectral"
    need_spec = target_kind in ("spectral", "waveform+spectral")
    if (need_wave and waveform is None) or (need_spec and spectral is None):
        raise ValueError(f"target={target_kind!r} needs the "
                         f"{'waveform and ' if need_wave else ''}"
                         f"{'spectral ' if need_spec else ''}reconstruction"
                         f"{'s' if need_wave and need_spec else ''}")
    loss = torch.zeros((), device=target.device)
    if target_kind == "normalized":
        loss = masked_mse(waveform, normalize_patches(target), mask, n_masked=n_masked)
    elif need_wave:
        loss = masked_mse(waveform, target, mask, n_masked=n_masked)
    if need_spec:
        spec = masked_mse(spectral, spectral_target(target), mask, n_masked=n_masked)
        loss = spec if target_kind == "spectral" else loss + spectral_weight * spec
    return loss


def vicreg_loss(features: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """VICReg variance + covariance terms on pooled features (Bardes et al. 2022).

    ``mean_d relu(1 - sqrt(var_d + eps)) + sum_{i != j} cov_ij^2 / D`` over the batch.

    Parameters
    ----------
    features : torch.Tensor, shape (B, D) or (B, C, P, D)
        Pooled features, or tokens (mean-pooled over channels and patches first).
    eps : float
        Added to the variance under the square root.

    Returns
    -------
    torch.Tensor, scalar float32
        About 1 for collapsed (constant) features, 0 for whitened ones; 0 (with a gradient
        path) for a batch of one.
    """
    z = features.float()
    if z.dim() == 4:
        z = z.mean(dim=(1, 2))
    if z.dim() != 2:
        raise ValueError(f"features have shape {tuple(features.shape)}; expected (batch, dim) "
                         f"or (batch, channels, patches, dim)")
    B, D = z.shape
    if B < 2:
        return z.sum() * 0.0
    z = z - z.mean(dim=0)
    std = (z.var(dim=0) + eps).sqrt()
    var_term = F.relu(1.0 - std).mean()
    cov = z.T @ z / (B - 1)                                               # (D, D)
    off = cov - torch.diag(torch.diagonal(cov))
    return var_term + off.pow(2).sum() / D


def supervised_loss(out: torch.Tensor, y: torch.Tensor, task: str, *,
                    label_smoothing: float = 0.0) -> torch.Tensor:
    """Loss of a classification / regression head.

    Parameters
    ----------
    out : torch.Tensor
        ``(B, n_classes)`` logits (multiclass), ``(B, 1)`` logit (binary) or ``(B, n_targets)``
        predictions (regression); for sequences ``(B, L, n_outputs)``, with labels ``(B, L)``:
        the loss is the mean over the labelled windows of all sequences
        (:func:`csbrain.engine.sequences.flatten_sequences`).
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
    if out.dim() == 3:
        out, y = flatten_sequences(out, y)
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
