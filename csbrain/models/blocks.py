"""The building blocks of CSBrain (spec §2), each readable on one screen.

Shapes: B batch, C channels (in the model's sorted order), P patches, S samples per patch,
D d_model, H heads, E head dim. A token tensor is ``(B, C, P, D)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from csbrain.config import EMBED_GROUPS, EMBED_KERNEL, EMBED_STRIDE, CSBrainConfig
from csbrain.models.layout import N_REGIONS, MontageLayout


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
        h = h + self.spectral_drop(self.spectral_proj(spec))
        pos = self.pos_conv(h.permute(0, 3, 1, 2))                # (B, D, C, P)
        return h + pos.permute(0, 2, 3, 1)


class TemporalConv(nn.Module):
    """Multi-scale temporal convolution (CST temporal), shared by all layers.

    ``mode="paper"``: a convolution along patches with the D features as channels.
    ``mode="released"``: the released memory layout (spec §2.1): each channel's ``(P, D)``
    tokens are read as a ``(D, P)`` signal, convolved, and the ``(D, P)`` result is read back
    as ``(P, D)``.
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
        if self.mode == "released":
            return y.reshape(B, C, P, D)
        return y.transpose(1, 2).reshape(B, C, P, D)


class RegionConv(nn.Module):
    """Multi-scale convolution along each region's electrode ring (CST spatial), shared.

    Each region has its own weights (``weight_i[r]``: ``(dk, D, k)``); padding is circular
    around the region, zero for single-electrode regions. Computed for all channels at once:
    one gather of the circular neighbours, then one batched matmul per kernel size with each
    channel's region weights.
    """

    def __init__(self, cfg: CSBrainConfig) -> None:
        super().__init__()
        self.kernel_sizes = cfg.kernel_sizes
        d = cfg.d_model
        self.weights = nn.ParameterList(
            nn.Parameter(torch.empty(N_REGIONS, dk, d, k)) for k, dk in zip(cfg.kernel_sizes, cfg.scale_dims))
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
        return y.reshape(C, B, P, D).permute(1, 0, 2, 3)


class WindowAttention(nn.Module):
    """Inter-window attention (SSA): tokens at the same offset of their windows attend.

    The patch axis is zero-padded to a multiple of ``w = min(P, window_size)``; padded tokens
    take part as keys and values, as in the released code.
    """

    def __init__(self, cfg: CSBrainConfig) -> None:
        super().__init__()
        self.window_size, self.n_heads, self.dropout = cfg.window_size, cfg.n_heads, cfg.dropout
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        B, C, P, D = u.shape
        w = min(P, self.window_size)
        n_win = -(-P // w)
        if n_win * w != P:
            u = F.pad(u, (0, 0, 0, n_win * w - P))
        H, E = self.n_heads, D // self.n_heads
        qkv = self.qkv(u).reshape(B, C, n_win, w, 3, H, E)
        q, k, v = qkv.permute(4, 0, 1, 3, 5, 2, 6).unbind(0)  # each (B, C, w, H, n_win, E)
        o = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        o = o.permute(0, 1, 4, 2, 3, 5).reshape(B, C, n_win * w, D)  # back to (B, C, P', D)
        return self.proj(o[:, :, :P])


class RegionAttention(nn.Module):
    """Inter-region attention (SSA): over channels at each patch, with a fixed group mask.

    Each token first receives ``region_fc`` of its region's mean token.
    """

    def __init__(self, cfg: CSBrainConfig) -> None:
        super().__init__()
        self.n_heads, self.dropout = cfg.n_heads, cfg.dropout
        self.region_fc = nn.Linear(cfg.d_model, cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)

    def forward(self, u: torch.Tensor, layout: MontageLayout) -> torch.Tensor:
        B, C, P, D = u.shape
        H, E = self.n_heads, D // self.n_heads
        g = torch.einsum("ij,bjpd->bpid", layout.region_mean.to(u.dtype), u)  # (B, P, C, D)
        z = u.transpose(1, 2) + self.region_fc(g)                              # (B, P, C, D)
        q, k, v = self.qkv(z).reshape(B, P, C, 3, H, E).permute(3, 0, 1, 4, 2, 5).unbind(0)
        o = F.scaled_dot_product_attention(                                   # (B, P, H, C, E)
            q, k, v, attn_mask=layout.attn_mask, dropout_p=self.dropout if self.training else 0.0)
        o = self.proj(o.transpose(2, 3).reshape(B, P, C, D))
        return o.transpose(1, 2)                                              # (B, C, P, D)


class EncoderLayer(nn.Module):
    """Pre-norm layer: inter-window attention, inter-region attention, feed-forward."""

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

    def forward(self, h: torch.Tensor, layout: MontageLayout) -> torch.Tensor:
        h = h + self.drop(self.window_attn(self.norm1(h)))
        h = h + self.drop(self.region_attn(self.norm2(h), layout))
        return h + self.drop(self.fc2(self.drop(F.gelu(self.fc1(self.norm3(h))))))
