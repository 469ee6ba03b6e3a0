"""The building blocks of CSBrain (spec §2), each readable on one screen.

Shapes: B batch, C channels (in the model's sorted order), P patches, S samples per patch,
D d_model, H heads, E head dim, L attention sequence length, N batch of a bmm, R = rows of the
region-convolution taps. A token tensor is ``(B, C, P, D)``, contiguous (the released temporal
convolution reads this memory layout).

Two execution paths compute the same function (``tests/models/test_fast_vs_naive.py``):

- the **portable path** (GPU, ``torch.compile``, ``fused_cpu = False``): plain PyTorch ops
  under autograd, attention through ``F.scaled_dot_product_attention`` (fused GPU kernels),
  the region masks and groupings precomputed as buffers of :class:`MontageLayout`;
- the **fused CPU path** (eager CPU, the default there): each residual block is one autograd
  function of :mod:`csbrain.models.cpu_kernels`; the modules below supply its block-specific
  pieces (``prepare``, ``to_heads``, ``from_heads``, ...).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from csbrain.config import EMBED_GROUPS, EMBED_KERNEL, EMBED_STRIDE, CSBrainConfig
from csbrain.models.cpu_kernels import (
    FusedCPU,
    _apply,
    _AttentionBlockFn,
    _dropped,
    _FeedForwardFn,
    _RegionConvFn,
    drop_mask,
    keep_scale,
    linear,
    linear_grads,
)
from csbrain.models.layout import N_REGIONS, MontageLayout

__all__ = ["EncoderLayer", "FusedCPU", "PatchEmbedding", "RegionAttention", "RegionConv",
           "TemporalConv", "WindowAttention"]


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
        spec = self.spectral_proj(spec)                          # (B, C, P, D)
        p = self.spectral_drop.p
        if self.training and p > 0 and h.device.type == "cpu":   # cheaper masks, see drop_mask
            spec = _dropped(spec, drop_mask(spec.shape, p, h.device), keep_scale(p))
        else:
            spec = self.spectral_drop(spec)
        h = h + spec
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


class RegionConv(FusedCPU, nn.Module):
    """Multi-scale convolution along each region's electrode ring (CST spatial), shared:
    ``h + conv(h)``.

    Each region has its own weights (``weights[i][r]``: ``(dk, D, k)``); padding is circular
    around the region, zero for single-electrode regions. Portable path: one gather of the
    circular neighbours, then one batched matmul per kernel size with each channel's region
    weights. Fused CPU path (:class:`_RegionConvFn`): matmul first, ``Z = W_c x_c`` for all taps
    of all kernels at once (one ``bmm`` over channels), then the shifted sum of ``Z`` over the
    ring (row gathers; the backward gathers with the inverse ring permutation, no scatter).
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
        # taps in Z's rows: (kernel index, tap j, first Z row, first output feature, width)
        self.taps, row, col = [], 0, 0
        for i, (k, dk) in enumerate(zip(cfg.kernel_sizes, cfg.scale_dims)):
            for j in [k // 2] + [j for j in range(k) if j != k // 2]:   # centre tap first
                self.taps.append((i, j, row + j * dk, col, dk))
            row, col = row + k * dk, col + dk

    def prepare(self, layout: MontageLayout) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel weights of the fused path, ``(C, R, D)`` (rows: kernel, tap, output) and
        biases ``(C, D)``; computed once per forward pass (the module is shared by all layers)."""
        w = torch.cat([w.permute(0, 3, 1, 2).flatten(1, 2) for w in self.weights], 1)  # (5, R, D)
        b = torch.cat(list(self.biases), 1)                                             # (5, D)
        return w.index_select(0, layout.region_index), b.index_select(0, layout.region_index)

    def forward(self, h: torch.Tensor, layout: MontageLayout, prepared=None) -> torch.Tensor:
        if self.use_fused(h):
            wc, bc = prepared if prepared is not None else self.prepare(layout)
            return _apply(_RegionConvFn, h, wc, bc, self, layout)
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

    def ring_sum(self, zt: torch.Tensor, bias: torch.Tensor, layout: MontageLayout) -> torch.Tensor:
        """``(C, R, N)`` tap outputs -> ``(C, D, N)``: bias + each tap at its ring neighbour."""
        C, _, N = zt.shape
        yt = zt.new_empty(C, bias.shape[1], N)
        for i, j, row, col, dk in self.taps:
            src, valid = layout.ring(self.kernel_sizes[i], j)
            out, z = yt[:, col:col + dk], zt[:, row:row + dk]
            if src is None:                                   # centre tap: identity, first
                torch.add(z, bias[:, col:col + dk, None], out=out)
            elif valid is None:
                out.add_(z.index_select(0, src))
            else:
                out.addcmul_(z.index_select(0, src), valid)
        return yt

    def ring_sum_backward(self, gyt: torch.Tensor, layout: MontageLayout) -> torch.Tensor:
        """Adjoint of :meth:`ring_sum`: ``(C, D, N)`` -> ``(C, R, N)`` by inverse-ring gathers."""
        C, _, N = gyt.shape
        gzt = gyt.new_empty(C, self.taps[-1][2] + self.taps[-1][4], N)
        for i, j, row, col, dk in self.taps:
            inv, valid = layout.ring(self.kernel_sizes[i], j, inverse=True)
            out, g = gzt[:, row:row + dk], gyt[:, col:col + dk]
            if inv is None:
                out.copy_(g)
            else:
                torch.index_select(g, 0, inv, out=out)
                if valid is not None:
                    out.mul_(valid)
        return gzt



class WindowAttention(FusedCPU, nn.Module):
    """Inter-window attention (SSA): tokens at the same offset of their windows attend.

    The patch axis is zero-padded to a multiple of ``w = min(P, window_size)``; padded tokens
    take part as keys and values, as in the released code. Sequences: ``(B*C*w, H, n_win, E)``.
    """

    def __init__(self, cfg: CSBrainConfig) -> None:
        super().__init__()
        self.window_size, self.n_heads, self.dropout = cfg.window_size, cfg.n_heads, cfg.dropout
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)

    def forward(self, u: torch.Tensor) -> torch.Tensor:  # portable path: LN1(h) -> block output
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

    # fused CPU path: sequences (N, L, E) <-> token rows; zt is the padded input (n, C, n_win*w, D)
    def score_bias(self, layout):                       # every window attends to every window
        return None

    def prepare(self, u, layout, w):
        P = u.shape[2]
        return F.pad(u, (0, 0, 0, -(-P // w) * w - P)), None

    def to_heads(self, t, n, C, P, w, parts):          # (rows, parts*D) -> (parts, N, n_win, E)
        H = self.n_heads
        t = t.reshape(n * C, -1, w, parts, H, t.shape[-1] // (parts * H))
        t = t.permute(3, 2, 4, 0, 1, 5)                   # (parts, w, H, n*C, n_win, E): cheap copy
        return t.reshape(parts, -1, t.shape[-2], t.shape[-1])

    def from_heads(self, t, n, C, P, w):               # (parts, N, n_win, E) -> (rows, parts*D)
        parts, _, n_win, E = t.shape
        t = t.reshape(parts, w, self.n_heads, n * C, n_win, E).permute(3, 4, 1, 0, 2, 5)
        return t.reshape(-1, parts * self.n_heads * E)

    def unpad(self, t, n, C, P):                        # padded rows -> (n, C, P, D)
        return t.reshape(n, C, -1, t.shape[-1])[:, :, :P]

    def pad_rows(self, t, n, C, P, w):                  # (n*C*P, D) -> (n*C*P_pad, D), zero rows
        return F.pad(t.view(n, C, P, -1), (0, 0, 0, -(-P // w) * w - P)).reshape(-1, t.shape[-1])

    def backward_prepare(self, dz, aux, layout, grads, n, C, P):
        return self.unpad(dz, n, C, P)


class RegionAttention(FusedCPU, nn.Module):
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

    def forward(self, u: torch.Tensor, layout: MontageLayout) -> torch.Tensor:  # portable path
        B, C, P, D = u.shape
        H, E = self.n_heads, D // self.n_heads
        z, _ = self.prepare(u, layout, None)                                   # (B, C, P, D)
        qkv = self.qkv(z).reshape(B, C, P, 3, H, E).permute(3, 0, 2, 4, 1, 5)  # (3, B, P, H, C, E)
        q, k, v = qkv.reshape(3, B * P, H, C, E).unbind(0)
        o = F.scaled_dot_product_attention(                                   # (B*P, H, C, E)
            q, k, v, attn_mask=layout.attn_mask, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(o.reshape(B, P, H, C, E).permute(0, 3, 1, 2, 4).reshape(B, C, P, D))

    def score_bias(self, layout):                       # (C, C): -inf outside the region groups
        return layout.attn_bias

    def prepare(self, u, layout, w):                    # z = u + region_fc(region mean of u)
        n, C, P, D = u.shape
        g = torch.matmul(layout.region_avg.to(u.dtype), u.view(n, C, P * D))  # (n, 5, P*D)
        fc = self.region_fc
        fg = linear(g.view(-1, D), fc.weight, fc.bias).view(n, N_REGIONS, P, D)  # (n, 5, P, D)
        return u + fg.index_select(1, layout.region_index), g

    def to_heads(self, t, n, C, P, w, parts):          # (rows, parts*D) -> (parts, N, C, E)
        H = self.n_heads
        t = t.reshape(n, C, P, parts, H, t.shape[-1] // (parts * H))
        return t.permute(3, 0, 2, 4, 1, 5).reshape(parts, -1, C, t.shape[-1])

    def from_heads(self, t, n, C, P, w):               # (parts, N, C, E) -> (n*C*P, parts*D)
        parts, _, _, E = t.shape
        t = t.reshape(parts, n, P, self.n_heads, C, E).permute(1, 4, 2, 0, 3, 5)
        return t.reshape(-1, parts * self.n_heads * E)

    def unpad(self, t, n, C, P):
        return t.view(n, C, P, -1)

    def pad_rows(self, t, n, C, P, w):
        return t

    def backward_prepare(self, dz, g, layout, grads, n, C, P):
        """Gradient through ``z = u + region_fc(A u)[region]``; accumulates region_fc grads."""
        D = dz.shape[-1]
        dz = dz.view(n, C, P * D)
        dfg = torch.matmul(layout.region_onehot.to(dz.dtype), dz).view(-1, D)   # (n*5*P, D)
        dg, grads["fc_w"], grads["fc_b"] = linear_grads(g.view(-1, D), self.region_fc.weight, dfg)
        dg = dg.view(n, N_REGIONS, P * D)
        return (dz + torch.matmul(layout.region_avg.t().to(dg.dtype), dg)).view(n, C, P, D)


class EncoderLayer(FusedCPU, nn.Module):
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
        if not self.use_fused(h):
            h = h + self.drop(self.window_attn(self.norm1(h)))
            h = h + self.drop(self.region_attn(self.norm2(h), layout))
            return h + self.drop(self.fc2(self.drop(F.gelu(self.fc1(self.norm3(h))))))
        for norm, attn in ((self.norm1, self.window_attn), (self.norm2, self.region_attn)):
            fc = getattr(attn, "region_fc", None)
            h = _apply(_AttentionBlockFn, h, norm.weight, norm.bias, attn.qkv.weight, attn.qkv.bias,
                       attn.proj.weight, attn.proj.bias, fc and fc.weight, fc and fc.bias,
                       attn, layout, self.training, norm.eps)
        return _apply(_FeedForwardFn, h, self.norm3.weight, self.norm3.bias, self.fc1.weight,
                      self.fc1.bias, self.fc2.weight, self.fc2.bias, self.drop.p, self.training,
                      self.norm3.eps, self.chunk_tokens)
