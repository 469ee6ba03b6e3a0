"""Fused CPU kernels of CSBrain's residual blocks: the eager-CPU training and inference path.

The model is the portable code of :mod:`csbrain.models.blocks`. Here each residual block
``h + Drop(block(LN(h)))`` has a frozen dataclass of exactly what it needs (``*Spec``: tensors,
sizes, rates) whose ``run`` / ``backward`` are its kernel, a forward pass and a hand-written
backward pass. :func:`plan` is the one place that chooses: eager CPU, not compiling, ``fused_cpu``
on, and per block, modules of exactly the expected types without hooks; anything else (a wrapped,
replaced, subclassed, parametrized or hooked ``nn.Linear``, ...) runs that block on the portable
path. ``tests/models/test_fast_vs_naive.py`` ties both paths to the naive reference.

Measured reasons (2-core AVX-512 CPU, torch 2.13; ``benchmarks/kernel_choices.py`` and
``benchmarks/model_speed.py``; the primitives' own figures are in :mod:`csbrain.models.cpu_ops`):
the short inter-window attention runs as ``bmm`` + softmax, 1.9x faster than
``scaled_dot_product_attention`` at these lengths; only block inputs and masks are saved, the
rest (LN, GELU, q/k/v, the first feed-forward matmul) is recomputed in the backward pass, which
keeps a training step at 0.17 of the naive memory. Blocks run in chunks of
:data:`CHUNK_TOKENS` tokens, which bounds the size of their temporaries; its effect on speed
varied from 0.98x to 1.29x over three runs (timings on this shared machine are noisy).

Shapes: B batch, C channels (sorted order), P patches (P' padded to whole windows), D d_model,
H heads, E head dim, N batch of a bmm, L attention sequence length, R rows of the region taps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.amp import custom_bwd, custom_fwd

from csbrain.models import cpu_ops as ops
from csbrain.models.blocks import EncoderLayer, RegionAttention, RegionConv, WindowAttention
from csbrain.models.layout import ring_taps

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


# ----------------------------------------------------------------------------- region conv
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
        step = ops.chunk_step(B, C * P, self.chunk_tokens)
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
        dk, ring = w.shape[1], ring_taps(layout.sorted_regions, k)
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
            return ops.pad_patches(u, P_pad), None
        n, C, P, D = u.shape
        g = torch.matmul(self.region_avg.to(u.dtype), u.view(n, C, P * D))      # (n, 5, P*D)
        fg = ops.linear(g.view(-1, D), *fc).view(n, -1, P, D)                   # (n, 5, P, D)
        return u + fg.index_select(1, self.region_index), g

    def prepare_backward(self, dz: Tensor, g: Tensor, fc: tuple[Tensor, ...], grads: ops.Grads,
                         n: int, C: int, P: int) -> Tensor:
        """``dz`` ``(n*C*P', D)`` -> ``du`` ``(n, C, P, D)``; adds the region_fc gradients."""
        if self.kind == "window":
            return dz.view(n, C, -1, dz.shape[-1])[:, :, :P]
        D = dz.shape[-1]
        dz = dz.view(n, C, P * D)
        dfg = torch.matmul((self.region_avg > 0).to(dz.dtype), dz).view(-1, D)  # (n*5*P, D)
        dg, grads[6], grads[7] = ops.linear_grads(g.view(-1, D), fc[0], dfg)
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
        qkv = self.to_heads(ops.linear(z.reshape(-1, D), wq, bq), n, C, w, 3)
        if self.bias is None:
            sc = torch.bmm(qkv[0], qkv[1].transpose(1, 2)).mul_(qkv.shape[-1] ** -0.5)
        else:
            sc = torch.baddbmm(self.bias.to(qkv.dtype), qkv[0], qkv[1].transpose(1, 2),
                               alpha=qkv.shape[-1] ** -0.5)
        pm = ops.softmax(sc)
        pd = pm if m_att is None else ops.dropped(pm, m_att, s)
        return qkv, pm, pd, self.from_heads(torch.bmm(pd, qkv[2])[None], n, C, w).view_as(z)

    def run(self, ctx, h: Tensor, ln_w, ln_b, wq, bq, wp, bp, *fc: Tensor) -> Tensor:
        h = h.contiguous()
        B, C, P, D = h.shape
        w, P_pad = self.window(P)
        L = C if self.kind == "region" else P_pad // w                 # sequence length
        s_att, s_res = (ops.keep_scale(p if self.training else 0.0)
                        for p in (self.attn_dropout, self.dropout))
        step = ops.chunk_step(B, C * P, self.chunk_tokens)
        out, saved = torch.empty_like(h), []
        for b0 in range(0, B, step):
            hc = h[b0:b0 + step]
            n = len(hc)
            z, _ = self.prepare(F.layer_norm(hc, (D,), ln_w, ln_b, self.eps), fc, P_pad)
            m_att = ops.dropout_mask((n * C * P_pad * self.n_heads // L, L, L),
                                     self.attn_dropout, self.training)    # (N, L, L)
            m_res = ops.dropout_mask((n * C * P, D), self.dropout, self.training)
            o = self.attend(z, wq, bq, m_att, s_att, w)[3][:, :, :P]               # (n, C, P, D)
            y = ops.linear(o.reshape(-1, D), wp, bp)                               # (n*C*P, D)
            torch.add(hc.reshape(-1, D), ops.dropped(y, m_res, inplace=True), alpha=s_res,
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
        grads, dh = ops.Grads(self.params), torch.empty_like(h)
        for i, b0 in enumerate(range(0, B, ctx.step)):
            m_att, m_res = masks[2 * i:2 * i + 2]
            hc, g = h[b0:b0 + ctx.step], gout[b0:b0 + ctx.step].reshape(-1, D)
            n = len(hc)
            u, mean, rstd = torch.native_layer_norm(hc, (D,), ln_w, ln_b, self.eps)
            z, aux = self.prepare(u, fc, P_pad)
            qkv, pm, pd, o = self.attend(z, wq, bq, m_att, s_att, w)             # recomputed
            dy = ops.dropped(g, m_res, s_res)                                      # (n*C*P, D)
            do, grads[4], grads[5] = ops.linear_grads(o[:, :, :P].reshape(-1, D), wp, dy)
            do = self.to_heads(ops.pad_patches(do.view(n, C, P, D), P_pad).reshape(-1, D),
                               n, C, w, 1)[0]                                   # (N, L, E)
            dqkv = torch.empty_like(qkv)
            dpd = torch.bmm(do, qkv[2].transpose(1, 2))                        # (N, L, L)
            torch.bmm(pd.transpose(1, 2), do.to(pd.dtype), out=dqkv[2])
            ds = ops.softmax_backward(ops.dropped(dpd, m_att, s_att, inplace=True), pm)
            ds.mul_(qkv.shape[-1] ** -0.5)
            torch.bmm(ds, qkv[1], out=dqkv[0])
            torch.bmm(ds.transpose(1, 2), qkv[0], out=dqkv[1])
            dz, grads[2], grads[3] = ops.linear_grads(z.reshape(-1, D), wq,
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
        x, s = h.view(-1, D), ops.keep_scale(self.dropout if self.training else 0.0)
        out, saved = torch.empty_like(x), []
        chunk = ops.chunk_step(len(x), 1, self.chunk_tokens)
        for lo in range(0, len(x), chunk):
            xc = x[lo:lo + chunk]                                      # (n, D)
            u = F.layer_norm(xc, (D,), ln_w, ln_b, self.eps)
            if ctx is None and not self.training:                      # inference: GELU fused
                y = ops.linear(ops.linear(u, w1, b1, "gelu"), w2, b2)
                torch.add(xc, y, out=out[lo:lo + chunk])
                continue
            a = ops.linear(u, w1, b1)                                  # (n, F)
            m_hid, m_res = (ops.dropout_mask(t.shape, self.dropout, self.training) for t in (a, xc))
            act = ops.dropped(F.gelu(a), m_hid, inplace=True)
            y = ops.linear(act, w2 * s, b2)                                   # b2 + s (m g) W2^T
            torch.add(xc, ops.dropped(y, m_res, inplace=True), alpha=s, out=out[lo:lo + chunk])
            saved += [m_hid, m_res]                                    # a is recomputed
        if ctx is not None:
            ctx.save_for_backward(h, ln_w, ln_b, w1, b1, w2, *saved)
            ctx.scale, ctx.chunk = s, chunk
        return out.view_as(h)

    def backward(self, ctx, gout: Tensor) -> tuple[Tensor, ...]:
        h, ln_w, ln_b, w1, b1, w2, *saved = ctx.saved_tensors
        s, chunk, D = ctx.scale, ctx.chunk, h.shape[-1]
        x, gout = h.reshape(-1, D), gout.reshape(-1, D)
        dx, grads = torch.empty_like(x), ops.Grads(self.params)
        for i, lo in enumerate(range(0, len(x), chunk)):
            m_hid, m_res = saved[2 * i:2 * i + 2]
            xc, g = x[lo:lo + chunk], gout[lo:lo + chunk]
            u, mean, rstd = torch.native_layer_norm(xc, (D,), ln_w, ln_b, self.eps)
            a = ops.linear(u, w1, b1)                                  # recomputed (n, F)
            act = ops.dropped(F.gelu(a), m_hid, inplace=True)
            dy = ops.dropped(g, m_res, s)                              # (n, D)
            dact, dw2, grads[5] = ops.linear_grads(act, w2 * s, dy)    # (n, F)
            grads[4] = dw2 * s                                         # y = act (s w2)^T
            da = torch.ops.aten.gelu_backward(ops.dropped(dact, m_hid, inplace=True).to(a.dtype), a)
            du, grads[2], grads[3] = ops.linear_grads(u, w1, da)
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
