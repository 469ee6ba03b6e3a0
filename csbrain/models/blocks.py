"""The building blocks of CSBrain (spec §2), each readable on one screen: plain PyTorch,
attention through ``F.scaled_dot_product_attention``, the region masks and groupings
precomputed as buffers of :class:`MontageLayout`. This is the model (GPU, ``torch.compile``,
``fused_cpu = False``); on eager CPU, :mod:`csbrain.models.fused_cpu` runs the residual blocks
it supports as fused kernels instead (``tests/models/test_fast_vs_naive.py``).

Shapes: B batch, C channels (in the model's sorted order), P patches, S samples per patch,
D d_model, H heads, E head dim. A token tensor is ``(B, C, P, D)``, contiguous (the released
temporal convolution reads this memory layout).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from csbrain.config import EMBED_GROUPS, EMBED_KERNEL, EMBED_STRIDE, CSBrainConfig
from csbrain.models.layout import MontageLayout
from csbrain.montage import N_REGIONS


class PatchEmbedding(nn.Module):
    """Patches ``(B, C, P, S)`` to tokens ``(B, C, P, D)``: conv stack + spectrum + position.

    Masked patches (``mask[b, c, p]`` true) are replaced by ``mask_token`` before embedding.
    The GroupNorm statistics of the conv stack are shared by all patches of a sample, as in the
    released code (the stack runs on one ``(C*P, S)`` image per sample).
    """

    def __init__(self, cfg: CSBrainConfig) -> None:
        super().__init__()
        e, d = cfg.embed_channels, cfg.d_model
        self.d_model = d
        self.proj_in = nn.Sequential(
            nn.Conv2d(1, e, (1, EMBED_KERNEL), (1, EMBED_STRIDE), (0, EMBED_KERNEL // 2)),
            nn.GroupNorm(EMBED_GROUPS, e), nn.GELU(),
            nn.Conv2d(e, e, (1, 3), (1, 1), (0, 1)), nn.GroupNorm(EMBED_GROUPS, e), nn.GELU(),
            nn.Conv2d(e, e, (1, 3), (1, 1), (0, 1)), nn.GroupNorm(EMBED_GROUPS, e), nn.GELU(),
        )
        self.spectral_proj = nn.Linear(cfg.patch_size // 2 + 1, d)
        self.spectral_drop = nn.Dropout(cfg.dropout)
        kc, kp = cfg.pos_kernel
        self.pos_conv = nn.Conv2d(d, d, (kc, kp), padding=(kc // 2, kp // 2), groups=d)
        self.mask_token = nn.Parameter(torch.zeros(cfg.patch_size), requires_grad=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        B, C, P, S = x.shape
        if mask is not None:
            x = torch.where(mask.bool().unsqueeze(-1), self.mask_token.to(x.dtype), x)
        h = self.proj_in(x.reshape(B, 1, C * P, S))             # (B, e, C*P, steps)
        h = h.permute(0, 2, 1, 3).reshape(B, C, P, self.d_model)  # feature = e_idx*steps + t
        spec = torch.fft.rfft(x.float(), dim=-1, norm="forward").abs().to(h.dtype)  # (B,C,P,S//2+1)
        h = h + self.spectral_drop(self.spectral_proj(spec))     # (B, C, P, D)
        pos = self.pos_conv(h.permute(0, 3, 1, 2))                # (B, D, C, P)
        return h + pos.permute(0, 2, 3, 1)


class TemporalConv(nn.Module):
    """Multi-scale temporal convolution (CST temporal), shared by all layers: ``h + conv(h)``.

    ``mode="paper"``: a convolution along patches with the D features as channels.
    ``mode="released"``: the released memory layout (spec §2.1): each channel's ``(P, D)``
    tokens are read as a ``(D, P)`` signal, convolved, and the ``(D, P)`` result is read back
    as ``(P, D)``. Three ``conv1d`` (oneDNN) beat one conv with zero-padded kernels and
    matmul formulations on CPU, forward and backward.
    """

    def __init__(self, cfg: CSBrainConfig) -> None:
        super().__init__()
        self.mode = cfg.temporal_mode
        self.convs = nn.ModuleList(nn.Conv1d(cfg.d_model, dk, k, padding=k // 2)
                                   for k, dk in zip(cfg.kernel_sizes, cfg.scale_dims))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        B, C, P, D = h.shape
        if self.mode == "released":
            z = h.reshape(B * C, D, P)                       # memory (P, D) read as (D, P)
        else:
            z = h.reshape(B * C, P, D).transpose(1, 2)       # (B*C, D, P)
        y = torch.cat([conv(z) for conv in self.convs], dim=1)  # (B*C, D, P)
        if self.mode != "released":
            y = y.transpose(1, 2).contiguous()               # (B*C, P, D)
        return y.view(B, C, P, D).add_(h)


class RegionConv(nn.Module):
    """Multi-scale convolution along each region's electrode ring (CST spatial), shared:
    ``h + conv(h)``.

    Each region has its own weights (``weights[i][r]``: ``(dk, D, k)``); padding is circular
    around the region, zero for single-electrode regions: one gather of the circular neighbours,
    then one batched matmul per kernel size with each channel's region weights.
    """

    def __init__(self, cfg: CSBrainConfig) -> None:
        super().__init__()
        self.kernel_sizes = cfg.kernel_sizes
        d = cfg.d_model
        self.weights = nn.ParameterList(
            nn.Parameter(torch.empty(N_REGIONS, dk, d, k))
            for k, dk in zip(cfg.kernel_sizes, cfg.scale_dims))
        self.biases = nn.ParameterList(
            nn.Parameter(torch.empty(N_REGIONS, dk)) for dk in cfg.scale_dims)
        for w, b, k in zip(self.weights, self.biases, cfg.kernel_sizes):  # nn.Conv default init
            bound = 1 / math.sqrt(d * k)
            for r in range(N_REGIONS):
                nn.init.kaiming_uniform_(w[r], a=math.sqrt(5))
            nn.init.uniform_(b, -bound, bound)

    def forward(self, h: torch.Tensor, layout: MontageLayout) -> torch.Tensor:
        B, C, P, D = h.shape
        hp = torch.cat([h, h.new_zeros(B, 1, P, D)], dim=1)   # (B, C+1, P, D): slot C is zero
        region = layout.region_index
        outs = []
        for w, b, k in zip(self.weights, self.biases, self.kernel_sizes):
            g = hp[:, layout.neighbours(k)]                   # (B, C, k, P, D)
            g = g.permute(1, 0, 3, 2, 4).reshape(C, B * P, k * D)
            wc = w[region].permute(0, 3, 2, 1).reshape(C, k * D, -1)  # (C, k*D, dk)
            outs.append(torch.baddbmm(b[region].unsqueeze(1), g, wc))  # (C, B*P, dk)
        y = torch.cat(outs, dim=-1)                           # (C, B*P, D)
        return h + y.reshape(C, B, P, D).permute(1, 0, 2, 3)


class WindowAttention(nn.Module):
    """Inter-window attention (SSA): tokens at the same offset of their windows attend.

    The patch axis is zero-padded to a multiple of ``w = min(P, window_size)``; padded tokens
    take part as keys and values, as in the released code. Sequences: ``(B*C*w, H, n_win, E)``.
    """

    def __init__(self, cfg: CSBrainConfig) -> None:
        super().__init__()
        self.window_size, self.n_heads, self.dropout = cfg.window_size, cfg.n_heads, cfg.dropout
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)

    def forward(self, u: torch.Tensor) -> torch.Tensor:  # LN1(h) (B, C, P, D) -> (B, C, P, D)
        B, C, P, D = u.shape
        H, E = self.n_heads, D // self.n_heads
        w = min(P, self.window_size)
        n = -(-P // w)
        u = F.pad(u, (0, 0, 0, n * w - P))                      # (B, C, n*w, D)
        qkv = self.qkv(u).reshape(B * C, n, w, 3, H, E)
        q, k, v = qkv.permute(3, 0, 2, 4, 1, 5).reshape(3, B * C * w, H, n, E).unbind(0)
        o = F.scaled_dot_product_attention(                      # (B*C*w, H, n, E)
            q, k, v, dropout_p=self.dropout if self.training else 0.0)
        o = o.reshape(B * C, w, H, n, E).permute(0, 3, 1, 2, 4)  # (B*C, n, w, H, E)
        return self.proj(o.reshape(B, C, n * w, D)[:, :, :P])


class RegionAttention(nn.Module):
    """Inter-region attention (SSA): over channels at each patch, with a fixed group mask.

    Each token first receives ``region_fc`` of its region's mean token (computed once per
    region, then broadcast). Sequences: ``(B*P, H, C, E)``.
    """

    def __init__(self, cfg: CSBrainConfig) -> None:
        super().__init__()
        self.n_heads, self.dropout = cfg.n_heads, cfg.dropout
        self.region_fc = nn.Linear(cfg.d_model, cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)

    def forward(self, u: torch.Tensor, layout: MontageLayout) -> torch.Tensor:  # LN2(h) -> out
        B, C, P, D = u.shape
        H, E = self.n_heads, D // self.n_heads
        g = torch.matmul(layout.region_avg.to(u.dtype), u.view(B, C, P * D))  # (B, 5, P*D) means
        z = u + self.region_fc(g.view(B, -1, P, D)).index_select(1, layout.region_index)
        qkv = self.qkv(z).reshape(B, C, P, 3, H, E).permute(3, 0, 2, 4, 1, 5)  # (3, B, P, H, C, E)
        q, k, v = qkv.reshape(3, B * P, H, C, E).unbind(0)
        o = F.scaled_dot_product_attention(                                   # (B*P, H, C, E)
            q, k, v, attn_mask=layout.attn_mask, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(o.reshape(B, P, H, C, E).permute(0, 3, 1, 2, 4).reshape(B, C, P, D))


class EncoderLayer(nn.Module):
    """Pre-norm layer: inter-window attention, inter-region attention, feed-forward.

    ``fused``: the fused CPU kernels of the three residual blocks (see
    :func:`csbrain.models.fused_cpu.plan`); a ``None`` entry (default: all) = this code.
    """

    def __init__(self, cfg: CSBrainConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.norm1 = nn.LayerNorm(d, eps=cfg.norm_eps)
        self.norm2 = nn.LayerNorm(d, eps=cfg.norm_eps)
        self.norm3 = nn.LayerNorm(d, eps=cfg.norm_eps)
        self.window_attn = WindowAttention(cfg)
        self.region_attn = RegionAttention(cfg)
        self.fc1 = nn.Linear(d, cfg.dim_feedforward)
        self.fc2 = nn.Linear(cfg.dim_feedforward, d)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, h: torch.Tensor, layout: MontageLayout, fused: Sequence[
            Callable[[torch.Tensor], torch.Tensor] | None] = (None, None, None)) -> torch.Tensor:
        window, region, feed_forward = fused
        h = window(h) if window else h + self.drop(self.window_attn(self.norm1(h)))
        h = region(h) if region else h + self.drop(self.region_attn(self.norm2(h), layout))
        if feed_forward:
            return feed_forward(h)
        return h + self.drop(self.fc2(self.drop(F.gelu(self.fc1(self.norm3(h))))))
