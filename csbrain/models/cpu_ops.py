"""CPU primitives of the fused kernels (:mod:`csbrain.models.fused_cpu`), outside autograd.

Measured reasons (2-core AVX-512 CPU, torch 2.13, ``benchmarks/kernel_choices.py``): oneDNN
linear layers run at 1.5-2x the MKL ``mm`` behind ``nn.Linear`` (1.55x at the feed-forward
shape, 1.99x for the large matmul of ``benchmarks/model_speed.py``); dropout masks from 16
random bits per element are 5.3x cheaper than ``bernoulli_`` and are stored as bools; a
composite softmax is 4.8x faster than ``torch.softmax`` on rows of a few entries.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def drop_mask(shape: tuple[int, ...], p: float, device: torch.device) -> Tensor:
    """Dropout mask (bool, True = dropped), P(drop) = round(p * 2**16) / 2**16, from 16 random
    bits per element; applied with ``masked_fill`` (a product would copy it to float)."""
    n = math.prod(shape)
    if p >= 1:
        return torch.ones(shape, dtype=torch.bool, device=device)
    bits = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_(-2 ** 63, None)
    return bits.view(torch.int16)[:n].view(shape) < round(p * 65536) - 32768


def keep_scale(p: float) -> float:
    """Inverse keep probability of :func:`drop_mask` (1 when there is no dropout)."""
    kept = 65536 - round(max(p, 0.0) * 65536)
    return 65536 / kept if kept else 0.0


def dropout_mask(shape: tuple[int, ...], p: float, training: bool) -> Tensor | None:
    return drop_mask(shape, p, torch.device("cpu")) if training and p > 0 else None


def dropped(t: Tensor, mask: Tensor | None, scale: float = 1.0, inplace: bool = False) -> Tensor:
    """``t`` with the dropped entries zeroed, times ``scale`` (in place if ``inplace``)."""
    if mask is not None:
        t, inplace = (t.masked_fill_(mask, 0) if inplace else t.masked_fill(mask, 0)), True
    if scale != 1:
        t = t.mul_(scale) if inplace else t * scale
    return t


def chunk_step(total: int, per_item: int, chunk_tokens: int) -> int:
    """Items per chunk: balanced chunks of at most about ``chunk_tokens`` tokens."""
    n_chunks = max(1, -(-total * per_item // chunk_tokens))
    return -(-total // n_chunks)


_LINEAR = (getattr(torch.ops.mkldnn, "_linear_pointwise", None)
           if torch.backends.mkldnn.is_available() else None)
#: dtypes oneDNN's linear runs on this CPU: bf16 only where the CPU has bf16 support (AVX-512
#: BF16 / AMX; elsewhere oneDNN has no bf16 inner product and refuses to build one).
_ONEDNN_DTYPES = () if _LINEAR is None else (
    (torch.float32, torch.bfloat16) if torch.ops.mkldnn._is_mkldnn_bf16_supported()
    else (torch.float32,))


def linear(x: Tensor, w: Tensor, b: Tensor | None = None, act: str = "none") -> Tensor:
    """``act(x @ w.T + b)`` for 2-D ``x``, outside autograd: oneDNN (any strides, bias and GELU
    fused) for :data:`_ONEDNN_DTYPES`, ``addmm`` otherwise."""
    dt = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype
    b = None if b is None else b.to(dt)
    x, w = x.to(dt), w.to(dt)
    if dt in _ONEDNN_DTYPES:
        return _LINEAR(x, w, b, act, [], "none" if act == "gelu" else "")
    y = x @ w.t() if b is None else torch.addmm(b, x, w.t())
    return F.gelu(y) if act == "gelu" else y


def linear_grads(x: Tensor, w: Tensor, dy: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients of ``y = x @ w.T (+ b)``: ``(dx, dw, db)`` (oneDNN where available; its input
    operand must be contiguous, so the narrower of ``x``, ``dy`` is the one transposed)."""
    dw = linear(dy.t(), x.t()) if dy.shape[1] <= x.shape[1] else linear(x.t(), dy.t()).t()
    return linear(dy, w.t()), dw, dy.sum(0)


class Grads(list):
    """Gradients of ``params`` summed over chunks (``grads[i] = v`` adds), in their dtypes."""

    def __init__(self, params: tuple[Tensor, ...]) -> None:
        super().__init__([None] * len(params))
        self.dtypes = [p.dtype for p in params]

    def __setitem__(self, i: int, v: Tensor) -> None:
        v = v.to(self.dtypes[i])
        super().__setitem__(i, v if self[i] is None else self[i] + v)


def pad_patches(t: Tensor, P_pad: int) -> Tensor:
    """``(n, C, P, X)`` -> ``(n, C, P', X)`` with zero rows appended."""
    return t if t.shape[2] == P_pad else F.pad(t, (0, 0, 0, P_pad - t.shape[2]))


def softmax(x: Tensor) -> Tensor:
    """Softmax over the last dim; a composite of vectorised ops on short rows (windows)."""
    if x.shape[-1] >= 16:
        return torch.softmax(x, -1)
    e = (x - x.amax(-1, keepdim=True)).exp_()
    return e.div_(e.sum(-1, keepdim=True))


def softmax_backward(dp: Tensor, p: Tensor) -> Tensor:
    if p.shape[-1] >= 16:
        return torch._softmax_backward_data(dp.to(p.dtype), p, -1, p.dtype)
    return (dp - (dp * p).sum(-1, keepdim=True)).mul_(p)
