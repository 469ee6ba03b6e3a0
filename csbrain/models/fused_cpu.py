"""Fused CPU kernels of CSBrain's residual blocks: the eager-CPU training and inference path.

The model is the portable code of :mod:`csbrain.models.blocks`. Here each residual block
``h + Drop(block(LN(h)))`` has a frozen dataclass of exactly what it needs (``*Spec``: tensors,
sizes, rates) whose ``run`` / ``backward`` are its kernel, a forward pass and a hand-written
backward pass. :func:`plan` is the one place that chooses: eager CPU, not compiling, ``fused_cpu``
on, and per block, modules of exactly the expected types without hooks; anything else (a wrapped,
replaced, subclassed, parametrized or hooked ``nn.Linear``, ...) runs that block on the portable
path. ``tests/models/test_fast_vs_naive.py`` ties both paths to the naive reference.

Measured reasons (2-core AVX-512 CPU, torch 2.13; ``benchmarks/kernel_choices.py`` and
``benchmarks/model_speed.py``): oneDNN linear layers run at 1.5-2x the MKL ``mm`` behind
``nn.Linear`` (1.55x at the feed-forward shape, 1.99x for the large matmul of model_speed);
dropout masks from 16 random bits per element are 5.3x cheaper than ``bernoulli_`` and are
stored as bools; the short inter-window attention runs as ``bmm`` + softmax, 1.9x faster than
``scaled_dot_product_attention`` at these lengths, with a composite softmax 4.8x faster than
``torch.softmax`` on rows of a few entries; only block inputs and masks are saved, the rest (LN,
GELU, q/k/v, the first feed-forward matmul) is recomputed in the backward pass, which keeps a
training step at 0.17 of the naive memory. Blocks run in chunks of :data:`CHUNK_TOKENS` tokens,
which bounds the size of their temporaries; its effect on speed varied from 0.98x to 1.29x
over three runs (timings on this shared machine are noisy).

Shapes: B batch, C channels (sorted order), P patches (P' padded to whole windows), D d_model,
H heads, E head dim, N batch of a bmm, L attention sequence length, R rows of the region taps.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.amp import custom_bwd, custom_fwd

from csbrain.models.blocks import EncoderLayer, RegionAttention, RegionConv, WindowAttention
from csbrain.models.layout import neighbour_index

#: Tokens per chunk of a fused block (bounds the temporaries; a module global for benchmarks).
CHUNK_TOKENS = 8192
_LN_GRADS = (True, True, True)


class FusedPlan(NamedTuple):
    """The fused kernel of every block; ``None`` where the block runs on the portable path."""

    region_conv: RegionConvSpec | None
    layers: list[tuple[AttentionSpec | None, AttentionSpec | None, FeedForwardSpec | None]]


def plan(model: nn.Module, h: Tensor) -> FusedPlan | None:
    """The fused/portable choice for one forward pass of a :class:`CSBrain` on tokens ``h``.

    ``None`` (all portable) unless ``model.fused_cpu``, ``h`` on CPU, eager mode and no global
    module hooks; otherwise each block's spec, ``None`` for a block whose modules it does not know.
    """
    g = nn.modules.module
    hooked = g._global_forward_hooks or g._global_forward_pre_hooks or g._global_backward_hooks \
        or g._global_backward_pre_hooks
    if hooked or not (model.fused_cpu and h.device.type == "cpu") or torch.compiler.is_compiling():
        return None
    layout, chunk, layers = model.layout, CHUNK_TOKENS, []
    bias = torch.zeros(layout.attn_mask.shape).masked_fill_(~layout.attn_mask, float("-inf"))
    for layer in model.layers:
        if type(layer) is EncoderLayer and _exact(layer.drop, nn.Dropout):
            layers.append((_attention(layer, "window", None, chunk),
                           _attention(layer, "region", (layout, bias), chunk),
                           _feed_forward(layer, chunk)))
        else:
            layers.append((None, None, None))
    return FusedPlan(_region_conv(model.region_conv, layout, chunk), layers)


def _exact(m: nn.Module, cls: type) -> bool:
    """``m`` is a ``cls`` itself (not a subclass, wrapper or parametrized copy), and neither it
    nor its submodules have hooks: a module whose weights the fused kernels may use directly."""
    return type(m) is cls and not any(
        s._forward_hooks or s._forward_pre_hooks or s._backward_hooks or s._backward_pre_hooks
        for s in m.modules())


def _layer_norm(norm: nn.Module) -> bool:
    return _exact(norm, nn.LayerNorm) and norm.weight is not None and norm.bias is not None


class _Spec:
    """Base of the block specs: ``spec(h)`` runs ``h -> h + block(h)`` on ``spec.params``."""

    params: tuple[Tensor, ...]

    def __call__(self, h: Tensor) -> Tensor:
        if torch.is_grad_enabled() and any(t.requires_grad for t in (h, *self.params)):
            return _Block.apply(self, h, *self.params)
        return self.run(None, h, *self.params)                  # no gradient needed


class _Block(torch.autograd.Function):
    """The autograd function of any spec: ``spec.run`` saves what ``spec.backward`` needs."""

    @staticmethod
    @custom_fwd(device_type="cpu")
    def forward(ctx, spec: _Spec, h: Tensor, *params: Tensor) -> Tensor:
        ctx.spec = spec
        return spec.run(ctx, h, *params)

    @staticmethod
    @custom_bwd(device_type="cpu")
    def backward(ctx, gout: Tensor):
        return None, *ctx.spec.backward(ctx, gout)


# ----------------------------------------------------------------------------- helpers
def drop_mask(shape: tuple[int, ...], p: float, device: torch.device) -> Tensor:
    """Dropout mask (bool, True = dropped), P(drop) = round(p * 2**16) / 2**16, from 16 random
    bits per element (5.3x cheaper than ``bernoulli_``, see the module docstring). Applied with
    ``masked_fill`` (multiplying by a bool tensor would materialise a float copy of it)."""
    n = math.prod(shape)
    if p >= 1:
        return torch.ones(shape, dtype=torch.bool, device=device)
    bits = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_(-2 ** 63, None)
    return bits.view(torch.int16)[:n].view(shape) < round(p * 65536) - 32768


def keep_scale(p: float) -> float:
    """Inverse keep probability of :func:`drop_mask` (1 when there is no dropout)."""
    kept = 65536 - round(max(p, 0.0) * 65536)
    return 65536 / kept if kept else 0.0


def _mask(shape: tuple[int, ...], p: float, training: bool) -> Tensor | None:
    return drop_mask(shape, p, torch.device("cpu")) if training and p > 0 else None


def _dropped(t: Tensor, mask: Tensor | None, scale: float = 1.0, inplace: bool = False) -> Tensor:
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
    """``act(x @ w.T + b)`` for 2-D ``x``, outside autograd; oneDNN for fp32/bf16 (any strides,
    bias and GELU fused): 1.5-2x the MKL ``mm`` of ``nn.Linear`` on this project's AVX-512
    CPUs. ``addmm`` for other dtypes, and for bf16 on CPUs without bf16 support."""
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


class _Grads(list):
    """Gradients of ``params`` summed over chunks (``grads[i] = v`` adds), in their dtypes."""

    def __init__(self, params: tuple[Tensor, ...]) -> None:
        super().__init__([None] * len(params))
        self.dtypes = [p.dtype for p in params]

    def __setitem__(self, i: int, v: Tensor) -> None:
        v = v.to(self.dtypes[i])
        super().__setitem__(i, v if self[i] is None else self[i] + v)


# ----------------------------------------------------------------------------- region conv
@functools.lru_cache(maxsize=64)
def _ring(sorted_regions: tuple[int, ...], k: int) -> tuple[tuple[Tensor | None, ...], ...]:
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


@dataclass(frozen=True, eq=False)
class RegionConvSpec(_Spec):
    """``h + RegionConv(h)`` in chunks of samples, matmul first: ``Z = W_c x_c`` for all taps
    of all kernels at once (one ``bmm`` over channels), then the shifted sum of ``Z`` over each
    region's ring (row gathers; the backward: inverse-ring gathers, no scatter). ``params``:
    per-channel weights ``(C, R, D)`` (rows: kernel, tap, output) and biases ``(C, D)``, once
    per forward pass; ``taps``: ``(first Z row, first output, width, *_ring tap)``, centre first.
    """

    params: tuple[Tensor, Tensor]
    taps: tuple[tuple, ...]
    chunk_tokens: int

    def run(self, ctx, h: Tensor, wc: Tensor, bc: Tensor) -> Tensor:
        h = h.contiguous()
        B, C, P, D = h.shape
        out, saved = torch.empty_like(h), []
        step = chunk_step(B, C * P, self.chunk_tokens)
        for b0 in range(0, B, step):
            hc = h[b0:b0 + step]                               # (n, C, P, D)
            ht = hc.transpose(0, 1).reshape(C, -1, D)          # (C, n*P, D) copy
            zt = torch.bmm(wc, ht.transpose(1, 2))             # (C, R, n*P)
            yt = zt.new_empty(C, D, zt.shape[2])               # bias + each tap at its neighbour
            for row, col, dk, src, valid, _, _ in self.taps:
                out_t, z = yt[:, col:col + dk], zt[:, row:row + dk]
                if src is None:                                # centre tap: identity, first
                    torch.add(z, bc[:, col:col + dk, None], out=out_t)
                elif valid is None:
                    out_t.add_(z.index_select(0, src))
                else:
                    out_t.addcmul_(z.index_select(0, src), valid)
            torch.add(hc, yt.view(C, D, len(hc), P).permute(2, 0, 3, 1), out=out[b0:b0 + step])
            saved.append(ht)
        if ctx is not None:
            ctx.save_for_backward(wc, *saved)
            ctx.step, ctx.shape = step, h.shape
        return out

    def backward(self, ctx, gout: Tensor) -> tuple[Tensor, ...]:
        wc, *saved = ctx.saved_tensors
        (B, C, P, D), step = ctx.shape, ctx.step
        dwc, dbc, dh = 0, 0, gout.new_empty(B, C, P, D)
        for b0, ht in zip(range(0, B, step), saved):
            g = gout[b0:b0 + step]                             # (n, C, P, D)
            gyt = g.permute(1, 3, 0, 2).reshape(C, D, -1)      # (C, D, n*P) copy
            dbc = dbc + gyt.sum(-1)
            gzt = gyt.new_empty(C, wc.shape[1], gyt.shape[2])  # (C, R, n*P)
            for row, col, dk, _, _, inv, inv_valid in self.taps:
                out_t, gy = gzt[:, row:row + dk], gyt[:, col:col + dk]
                if inv is None:
                    out_t.copy_(gy)
                else:
                    torch.index_select(gy, 0, inv, out=out_t)
                    if inv_valid is not None:
                        out_t.mul_(inv_valid)
            dwc = torch.bmm(gzt, ht) if b0 == 0 else dwc.baddbmm_(gzt, ht)   # (C, R, D)
            dht = torch.bmm(wc.transpose(1, 2), gzt)           # (C, D, n*P)
            torch.add(g, dht.view(C, D, len(g), P).permute(2, 0, 3, 1), out=dh[b0:b0 + step])
        return dh, dwc, dbc


def _region_conv(conv: nn.Module, layout, chunk: int) -> RegionConvSpec | None:
    if not (_exact(conv, RegionConv) and all(type(p) is nn.ParameterList
                                             for p in (conv.weights, conv.biases))):
        return None
    taps, row, col = [], 0, 0
    for w, k in zip(conv.weights, conv.kernel_sizes):
        dk, ring = w.shape[1], _ring(layout.sorted_regions, k)
        for j in [k // 2] + [j for j in range(k) if j != k // 2]:
            taps.append((row + j * dk, col, dk, *ring[j]))
        row, col = row + k * dk, col + dk
    w = torch.cat([w.permute(0, 3, 1, 2).flatten(1, 2) for w in conv.weights], 1)   # (5, R, D)
    b = torch.cat(list(conv.biases), 1)                                             # (5, D)
    region = layout.region_index
    return RegionConvSpec((w.index_select(0, region), b.index_select(0, region)), tuple(taps),
                          chunk)


# ----------------------------------------------------------------------------- attention
@dataclass(frozen=True, eq=False)
class AttentionSpec(_Spec):
    """``h + Drop(proj(attention(qkv(z))))`` with ``u = LN(h)`` and, by ``kind``:

    - ``"window"``: ``z`` = ``u`` zero-padded to whole windows of ``w = min(P, window_size)``
      patches; sequences ``(N = w*H*B*C, L = P'/w)``: the tokens at one offset of the windows;
    - ``"region"``: ``z = u + region_fc(region mean of u)`` (``region_avg`` ``(5, C)``,
      ``region_index`` ``(C,)``); sequences ``(N = B*P*H, L = C)`` under the additive mask
      ``bias`` ``(C, C)``.

    ``params``: LN weight, bias, qkv weight, bias, proj weight, bias (+ region_fc weight, bias).
    In chunks of samples; saves the input and bool dropout masks, recomputes the rest.
    """

    kind: Literal["window", "region"]
    params: tuple[Tensor, ...]
    eps: float
    n_heads: int
    attn_dropout: float
    dropout: float
    training: bool
    chunk_tokens: int
    window_size: int = 0
    region_avg: Tensor | None = None
    region_index: Tensor | None = None
    bias: Tensor | None = None

    def window(self, P: int) -> tuple[int, int]:
        """``(w, P')``: patches per window, padded patch count (region kind: one window)."""
        w = min(P, self.window_size) if self.kind == "window" else P
        return w, -(-P // w) * w

    def prepare(self, u: Tensor, fc: tuple[Tensor, ...], P_pad: int) -> tuple[Tensor, Tensor]:
        """``z`` ``(n, C, P', D)`` from ``u = LN(h)``; region kind: also the region means
        ``(n, 5, P*D)`` that the backward pass needs."""
        if self.kind == "window":
            return _pad_patches(u, P_pad), None
        n, C, P, D = u.shape
        g = torch.matmul(self.region_avg.to(u.dtype), u.view(n, C, P * D))      # (n, 5, P*D)
        fg = linear(g.view(-1, D), *fc).view(n, -1, P, D)                       # (n, 5, P, D)
        return u + fg.index_select(1, self.region_index), g

    def prepare_backward(self, dz: Tensor, g: Tensor, fc: tuple[Tensor, ...], grads: _Grads,
                         n: int, C: int, P: int) -> Tensor:
        """``dz`` ``(n*C*P', D)`` -> ``du`` ``(n, C, P, D)``; adds the region_fc gradients."""
        if self.kind == "window":
            return dz.view(n, C, -1, dz.shape[-1])[:, :, :P]
        D = dz.shape[-1]
        dz = dz.view(n, C, P * D)
        dfg = torch.matmul((self.region_avg > 0).to(dz.dtype), dz).view(-1, D)  # (n*5*P, D)
        dg, grads[6], grads[7] = linear_grads(g.view(-1, D), fc[0], dfg)
        dg = dg.view(n, -1, P * D)
        return (dz + torch.matmul(self.region_avg.t().to(dg.dtype), dg)).view(n, C, P, D)

    def to_heads(self, t: Tensor, n: int, C: int, w: int, parts: int) -> Tensor:
        """Token rows ``(n*C*P', parts*D)`` -> sequences ``(parts, N, L, E)`` (a copy)."""
        H = self.n_heads
        E = t.shape[-1] // (parts * H)
        if self.kind == "window":   # (n, C, n_win, w, parts, H, E) -> (parts, w, H, n, C, n_win, E)
            t = t.view(n, C, -1, w, parts, H, E).permute(4, 3, 5, 0, 1, 2, 6)
        else:                       # (n, C, P, parts, H, E) -> (parts, n, P, H, C, E)
            t = t.view(n, C, -1, parts, H, E).permute(3, 0, 2, 4, 1, 5)
        return t.reshape(parts, -1, t.shape[-2], E)

    def from_heads(self, t: Tensor, n: int, C: int, w: int) -> Tensor:
        """Inverse of :meth:`to_heads`: ``(parts, N, L, E)`` -> ``(n*C*P', parts*D)``."""
        parts, H, E = t.shape[0], self.n_heads, t.shape[-1]
        if self.kind == "window":
            t = t.view(parts, w, H, n, C, -1, E).permute(3, 4, 5, 1, 0, 2, 6)
        else:
            t = t.view(parts, n, -1, H, C, E).permute(1, 4, 2, 0, 3, 5)
        return t.reshape(-1, parts * H * E)

    def attend(self, z: Tensor, wq: Tensor, bq: Tensor, m_att: Tensor | None, s: float, w: int):
        """q/k/v ``(3, N, L, E)``, probabilities before and after dropout ``(N, L, L)`` and the
        attention output ``(n, C, P', D)`` of ``z``."""
        n, C, _, D = z.shape
        qkv = self.to_heads(linear(z.reshape(-1, D), wq, bq), n, C, w, 3)
        if self.bias is None:
            sc = torch.bmm(qkv[0], qkv[1].transpose(1, 2)).mul_(qkv.shape[-1] ** -0.5)
        else:
            sc = torch.baddbmm(self.bias.to(qkv.dtype), qkv[0], qkv[1].transpose(1, 2),
                               alpha=qkv.shape[-1] ** -0.5)
        pm = _softmax(sc)
        pd = pm if m_att is None else _dropped(pm, m_att, s)
        return qkv, pm, pd, self.from_heads(torch.bmm(pd, qkv[2])[None], n, C, w).view_as(z)

    def run(self, ctx, h: Tensor, ln_w, ln_b, wq, bq, wp, bp, *fc: Tensor) -> Tensor:
        h = h.contiguous()
        B, C, P, D = h.shape
        w, P_pad = self.window(P)
        L = C if self.kind == "region" else P_pad // w                 # sequence length
        s_att, s_res = (keep_scale(p if self.training else 0.0)
                        for p in (self.attn_dropout, self.dropout))
        step = chunk_step(B, C * P, self.chunk_tokens)
        out, saved = torch.empty_like(h), []
        for b0 in range(0, B, step):
            hc = h[b0:b0 + step]
            n = len(hc)
            z, _ = self.prepare(F.layer_norm(hc, (D,), ln_w, ln_b, self.eps), fc, P_pad)
            m_att = _mask((n * C * P_pad * self.n_heads // L, L, L), self.attn_dropout,
                          self.training)                                  # (N, L, L)
            m_res = _mask((n * C * P, D), self.dropout, self.training)
            o = self.attend(z, wq, bq, m_att, s_att, w)[3][:, :, :P]               # (n, C, P, D)
            y = linear(o.reshape(-1, D), wp, bp)                                   # (n*C*P, D)
            torch.add(hc.reshape(-1, D), _dropped(y, m_res, inplace=True), alpha=s_res,
                      out=out[b0:b0 + step].view(-1, D))                   # h + s Drop(y)
            saved += [m_att, m_res]
        if ctx is not None:
            ctx.save_for_backward(h, ln_w, ln_b, wq, bq, wp, *fc, *saved)
            ctx.step, ctx.scales = step, (s_att, s_res)
        return out

    def backward(self, ctx, gout: Tensor) -> tuple[Tensor, ...]:
        h, ln_w, ln_b, wq, bq, wp, *rest = ctx.saved_tensors
        n_fc = len(self.params) - 6
        fc, masks, (s_att, s_res) = tuple(rest[:n_fc]), rest[n_fc:], ctx.scales
        B, C, P, D = h.shape
        w, P_pad = self.window(P)
        grads, dh = _Grads(self.params), torch.empty_like(h)
        for i, b0 in enumerate(range(0, B, ctx.step)):
            m_att, m_res = masks[2 * i:2 * i + 2]
            hc, g = h[b0:b0 + ctx.step], gout[b0:b0 + ctx.step].reshape(-1, D)
            n = len(hc)
            u, mean, rstd = torch.native_layer_norm(hc, (D,), ln_w, ln_b, self.eps)
            z, aux = self.prepare(u, fc, P_pad)
            qkv, pm, pd, o = self.attend(z, wq, bq, m_att, s_att, w)             # recomputed
            dy = _dropped(g, m_res, s_res)                                      # (n*C*P, D)
            do, grads[4], grads[5] = linear_grads(o[:, :, :P].reshape(-1, D), wp, dy)
            do = self.to_heads(_pad_patches(do.view(n, C, P, D), P_pad).reshape(-1, D),
                               n, C, w, 1)[0]                                   # (N, L, E)
            dqkv = torch.empty_like(qkv)
            dpd = torch.bmm(do, qkv[2].transpose(1, 2))                        # (N, L, L)
            torch.bmm(pd.transpose(1, 2), do.to(pd.dtype), out=dqkv[2])
            ds = _softmax_backward(_dropped(dpd, m_att, s_att, inplace=True), pm)
            ds.mul_(qkv.shape[-1] ** -0.5)
            torch.bmm(ds, qkv[1], out=dqkv[0])
            torch.bmm(ds.transpose(1, 2), qkv[0], out=dqkv[1])
            dz, grads[2], grads[3] = linear_grads(z.reshape(-1, D), wq,
                                                  self.from_heads(dqkv, n, C, w))
            du = self.prepare_backward(dz, aux, fc, grads, n, C, P)
            dx, grads[0], grads[1] = torch.ops.aten.native_layer_norm_backward(
                du.to(hc.dtype).contiguous(), hc, (D,), mean, rstd, ln_w, ln_b, _LN_GRADS)
            torch.add(dx, g.view_as(dx), out=dh[b0:b0 + ctx.step])
        return dh, *grads


def _attention(layer: EncoderLayer, kind: str, region, chunk: int) -> AttentionSpec | None:
    norm, attn = (layer.norm1, layer.window_attn) if kind == "window" else \
        (layer.norm2, layer.region_attn)
    linears = (attn.qkv, attn.proj) + ((attn.region_fc,) if kind == "region" else ())
    if not (_layer_norm(norm) and _exact(attn, WindowAttention if kind == "window" else
                                         RegionAttention)
            and all(type(m) is nn.Linear for m in linears)):
        return None
    params = (norm.weight, norm.bias) + tuple(t for m in linears for t in (m.weight, m.bias))
    common = (kind, params, norm.eps, attn.n_heads, attn.dropout, layer.drop.p, layer.training,
              chunk)
    if kind == "window":
        return AttentionSpec(*common, window_size=attn.window_size)
    layout, bias = region
    return AttentionSpec(*common, region_avg=layout.region_avg, region_index=layout.region_index,
                         bias=bias)


def _pad_patches(t: Tensor, P_pad: int) -> Tensor:
    """``(n, C, P, X)`` -> ``(n, C, P', X)`` with zero rows appended."""
    return t if t.shape[2] == P_pad else F.pad(t, (0, 0, 0, P_pad - t.shape[2]))


def _softmax(x: Tensor) -> Tensor:
    """Softmax over the last dim; for short rows (windows) a composite of vectorised ops is ~5x
    faster on CPU than the row-wise kernel."""
    if x.shape[-1] >= 16:
        return torch.softmax(x, -1)
    e = (x - x.amax(-1, keepdim=True)).exp_()
    return e.div_(e.sum(-1, keepdim=True))


def _softmax_backward(dp: Tensor, p: Tensor) -> Tensor:
    if p.shape[-1] >= 16:
        return torch._softmax_backward_data(dp.to(p.dtype), p, -1, p.dtype)
    return (dp - (dp * p).sum(-1, keepdim=True)).mul_(p)


# ----------------------------------------------------------------------------- feed-forward
@dataclass(frozen=True, eq=False)
class FeedForwardSpec(_Spec):
    """``h + Drop(fc2(Drop(gelu(fc1(LN(h))))))`` in token chunks; saves the input and bool
    masks, recomputes LN, fc1 and GELU in the backward pass. ``params``: LN weight, bias, fc1
    weight, bias, fc2 weight, bias."""

    params: tuple[Tensor, ...]
    eps: float
    dropout: float
    training: bool
    chunk_tokens: int

    def run(self, ctx, h: Tensor, ln_w, ln_b, w1, b1, w2, b2) -> Tensor:
        h, D = h.contiguous(), h.shape[-1]
        x, s = h.view(-1, D), keep_scale(self.dropout if self.training else 0.0)
        out, saved = torch.empty_like(x), []
        chunk = chunk_step(len(x), 1, self.chunk_tokens)
        for lo in range(0, len(x), chunk):
            xc = x[lo:lo + chunk]                                      # (n, D)
            u = F.layer_norm(xc, (D,), ln_w, ln_b, self.eps)
            if ctx is None and not self.training:                      # inference: GELU fused
                torch.add(xc, linear(linear(u, w1, b1, "gelu"), w2, b2), out=out[lo:lo + chunk])
                continue
            a = linear(u, w1, b1)                                      # (n, F)
            m_hid, m_res = (_mask(t.shape, self.dropout, self.training) for t in (a, xc))
            y = linear(_dropped(F.gelu(a), m_hid, inplace=True), w2 * s, b2)  # b2 + s (m g) W2^T
            torch.add(xc, _dropped(y, m_res, inplace=True), alpha=s, out=out[lo:lo + chunk])
            saved += [m_hid, m_res]                                    # a is recomputed
        if ctx is not None:
            ctx.save_for_backward(h, ln_w, ln_b, w1, b1, w2, *saved)
            ctx.scale, ctx.chunk = s, chunk
        return out.view_as(h)

    def backward(self, ctx, gout: Tensor) -> tuple[Tensor, ...]:
        h, ln_w, ln_b, w1, b1, w2, *saved = ctx.saved_tensors
        s, chunk, D = ctx.scale, ctx.chunk, h.shape[-1]
        x, gout = h.reshape(-1, D), gout.reshape(-1, D)
        dx, grads = torch.empty_like(x), _Grads(self.params)
        for i, lo in enumerate(range(0, len(x), chunk)):
            m_hid, m_res = saved[2 * i:2 * i + 2]
            xc, g = x[lo:lo + chunk], gout[lo:lo + chunk]
            u, mean, rstd = torch.native_layer_norm(xc, (D,), ln_w, ln_b, self.eps)
            a = linear(u, w1, b1)                                      # recomputed (n, F)
            act = _dropped(F.gelu(a), m_hid, inplace=True)
            dy = _dropped(g, m_res, s)                                 # (n, D)
            dact, dw2, grads[5] = linear_grads(act, w2 * s, dy)        # (n, F)
            grads[4] = dw2 * s                                         # y = act (s w2)^T
            da = torch.ops.aten.gelu_backward(_dropped(dact, m_hid, inplace=True).to(a.dtype), a)
            du, grads[2], grads[3] = linear_grads(u, w1, da)
            dxc, grads[0], grads[1] = torch.ops.aten.native_layer_norm_backward(
                du.to(xc.dtype), xc, (D,), mean, rstd, ln_w, ln_b, _LN_GRADS)
            torch.add(dxc, g, out=dx[lo:lo + chunk])
        return dx.view_as(h), *grads


def _feed_forward(layer: EncoderLayer, chunk: int) -> FeedForwardSpec | None:
    norm, fc1, fc2 = layer.norm3, layer.fc1, layer.fc2
    if not (_layer_norm(norm) and _exact(fc1, nn.Linear) and _exact(fc2, nn.Linear)):
        return None
    return FeedForwardSpec((norm.weight, norm.bias, fc1.weight, fc1.bias, fc2.weight, fc2.bias),
                           norm.eps, layer.drop.p, layer.training, chunk)
