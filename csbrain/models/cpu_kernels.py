"""Fused CPU kernels of CSBrain's blocks: the eager-CPU training and inference path.

Every residual block ``h + Drop(block(LN(h)))`` is one autograd function (``_*Fn``) with a
hand-written backward; :class:`FusedCPU` (a mixin of the modules in :mod:`csbrain.models.blocks`)
selects them in eager CPU mode. The portable path of the modules (plain PyTorch ops, attention
through ``F.scaled_dot_product_attention``) computes the same function and is used on GPU and
under ``torch.compile``; ``tests/models/test_fast_vs_naive.py`` ties both to the naive reference.

Measured reasons (2-core AVX-512 CPU, torch 2.13; ``benchmarks/kernel_choices.py`` and
``benchmarks/model_speed.py``): oneDNN linear layers run at 1.5-2x the MKL ``mm`` behind
``nn.Linear`` (1.55x at the feed-forward shape, 1.99x for the large matmul of model_speed);
dropout masks from 16 random bits per element are 5.3x cheaper than ``bernoulli_`` and are
stored as bools; the short inter-window attention runs as ``bmm`` + softmax, 1.9x faster than
``scaled_dot_product_attention`` at these lengths, with a composite softmax 4.8x faster than
``torch.softmax`` on rows of a few entries; only block inputs and masks are saved, the rest (LN,
GELU, q/k/v, the first feed-forward matmul) is recomputed in the backward pass, which keeps a
training step at 0.17 of the naive memory. Blocks run in chunks of ``chunk_tokens`` tokens,
which bounds the size of their temporaries; its effect on speed varied from 0.98x to 1.29x
over three runs (timings on this shared machine are noisy).

Shapes: B batch, C channels (sorted order), P patches, D d_model, N batch of a bmm, L attention
sequence length, E head dim, R rows of the region-convolution taps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.amp import custom_bwd, custom_fwd

_LN_GRADS = (True, True, True)


class FusedCPU:
    """Mixin: ``fused_cpu`` (class default True) selects the fused CPU path in eager CPU mode."""

    fused_cpu = True
    chunk_tokens = 8192
    #: attention blocks: keep q/k/v for the backward pass (+2.4 KB per token and layer) instead
    #: of recomputing them (one more matmul per attention, about +4% training time)
    keep_qkv = False

    def use_fused(self, h: torch.Tensor) -> bool:
        return self.fused_cpu and h.device.type == "cpu" and not torch.compiler.is_compiling()


def drop_mask(shape: tuple[int, ...], p: float, device: torch.device) -> torch.Tensor:
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
    kept = 65536 - round(p * 65536)
    return 65536 / kept if 0 < p and kept else (1.0 if p <= 0 else 0.0)


def _masks(shapes, p: float, training: bool, device) -> list:
    return [drop_mask(s, p, device) if training and p > 0 else None for s in shapes]


def _dropped(t: torch.Tensor, mask, scale: float = 1.0, inplace: bool = False) -> torch.Tensor:
    """``t`` with the dropped entries zeroed, times ``scale`` (in place if ``inplace``)."""
    if mask is not None:
        t, inplace = (t.masked_fill_(mask, 0) if inplace else t.masked_fill(mask, 0)), True
    if scale != 1:
        t = t.mul_(scale) if inplace else t * scale
    return t


def _drop_add(x: torch.Tensor, y: torch.Tensor, mask, scale: float, out: torch.Tensor) -> None:
    """``out = x + scale * dropout(y)`` (``y`` is overwritten)."""
    torch.add(x, _dropped(y, mask, inplace=True), alpha=scale, out=out)


def chunk_step(total: int, per_item: int, chunk_tokens: int) -> int:
    """Items per chunk: balanced chunks of at most about ``chunk_tokens`` tokens."""
    n_chunks = max(1, -(-total * per_item // chunk_tokens))
    return -(-total // n_chunks)


_LINEAR = (getattr(torch.ops.mkldnn, "_linear_pointwise", None)
           if torch.backends.mkldnn.is_available() else None)


def linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None, act: str = "none"):
    """``act(x @ w.T + b)`` for 2-D ``x``; oneDNN on CPU (fp32/bf16, any strides, bias and GELU
    fused, no autograd): 1.5-2x the MKL ``mm`` of ``nn.Linear`` on this project's AVX-512
    CPUs. Falls back to ``addmm`` elsewhere and when autograd must record the op."""
    dt = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype
    grad = torch.is_grad_enabled() and (x.requires_grad or w.requires_grad)
    if _LINEAR is not None and x.device.type == "cpu" and dt in (torch.float32, torch.bfloat16) \
            and not grad and not torch.compiler.is_compiling():
        b = None if b is None else b.to(dt)
        return _LINEAR(x.to(dt), w.to(dt), b, act, [], "none" if act == "gelu" else "")
    y = x @ w.t() if b is None else torch.addmm(b, x, w.t())
    return F.gelu(y) if act == "gelu" else y


def linear_grads(x, w, dy):
    """Gradients of ``y = x @ w.T (+ b)``: ``(dx, dw, db)`` (oneDNN where available; its input
    operand must be contiguous, so the narrower of ``x``, ``dy`` is the one transposed)."""
    dw = linear(dy.t(), x.t()) if dy.shape[1] <= x.shape[1] else linear(x.t(), dy.t()).t()
    return linear(dy, w.t()), dw, dy.sum(0)


def _apply(fn, *args):
    """Run an autograd function, or only its forward pass when no gradient is needed."""
    if torch.is_grad_enabled() and any(isinstance(a, torch.Tensor) and a.requires_grad
                                       for a in args):
        return fn.apply(*args)
    return fn.run(None, *args)


class _RegionConvFn(torch.autograd.Function):
    """``h + RegionConv(h)`` in chunks of windows; saves the channel-major input copies."""

    @staticmethod
    def run(ctx, h, wc, bc, mod, layout):  # wc: (C, R, D), bc: (C, D), see RegionConv.prepare
        h = h.contiguous()
        B, C, P, D = h.shape
        out, saved = torch.empty_like(h), []
        step = chunk_step(B, C * P, mod.chunk_tokens)
        for b0 in range(0, B, step):
            hc = h[b0:b0 + step]                               # (n, C, P, D)
            ht = hc.transpose(0, 1).reshape(C, -1, D)          # (C, n*P, D) copy
            zt = torch.bmm(wc, ht.transpose(1, 2))             # (C, R, n*P)
            yt = mod.ring_sum(zt, bc, layout)                  # (C, D, n*P)
            torch.add(hc, yt.view(C, D, len(hc), P).permute(2, 0, 3, 1), out=out[b0:b0 + step])
            saved.append(ht)
        if ctx is not None:
            ctx.save_for_backward(wc, *saved)
            ctx.args = (mod, layout, step, h.shape)
        return out

    @staticmethod
    @custom_fwd(device_type="cpu")
    def forward(ctx, h, wc, bc, mod, layout):
        return _RegionConvFn.run(ctx, h, wc, bc, mod, layout)

    @staticmethod
    @custom_bwd(device_type="cpu")
    def backward(ctx, gout):
        wc, *saved = ctx.saved_tensors
        mod, layout, step, (B, C, P, D) = ctx.args
        dwc, dbc, dh = 0, 0, gout.new_empty(B, C, P, D)
        for b0, ht in zip(range(0, B, step), saved):
            g = gout[b0:b0 + step]                             # (n, C, P, D)
            gyt = g.permute(1, 3, 0, 2).reshape(C, D, -1)      # (C, D, n*P) copy
            dbc = dbc + gyt.sum(-1)
            gzt = mod.ring_sum_backward(gyt, layout)           # (C, R, n*P)
            dwc = torch.bmm(gzt, ht) if b0 == 0 else dwc.baddbmm_(gzt, ht)   # (C, R, D)
            dht = torch.bmm(wc.transpose(1, 2), gzt)           # (C, D, n*P)
            torch.add(g, dht.view(C, D, len(g), P).permute(2, 0, 3, 1), out=dh[b0:b0 + step])
        return dh, dwc, dbc, None, None


class _AttentionBlockFn(torch.autograd.Function):
    """``h + Drop(proj(attention(qkv(prepare(LN(h))))))`` for either attention, in chunks of
    windows; saves the input and bool dropout masks (and q/k/v if ``keep_qkv``), recomputes
    the rest."""

    @staticmethod
    def run(ctx, h, ln_w, ln_b, wq, bq, wp, bp, fc_w, fc_b, attn, layout, training, eps):
        h = h.contiguous()
        B, C, P, D = h.shape
        w = min(P, getattr(attn, "window_size", P))
        bias = attn.score_bias(layout)                   # additive mask (L, L) or None
        p, s = attn.dropout, keep_scale(attn.dropout if training else 0.0)
        step = chunk_step(B, C * P, attn.chunk_tokens)
        out, saved = torch.empty_like(h), []
        for b0 in range(0, B, step):
            hc = h[b0:b0 + step]
            n = len(hc)
            z, _ = attn.prepare(F.layer_norm(hc, (D,), ln_w, ln_b, eps), layout, w)
            qkv = attn.to_heads(linear(z.reshape(-1, D), wq, bq), n, C, P, w, 3)  # (3, N, L, E)
            m_att, m_res = _masks([(qkv.shape[1], qkv.shape[2], qkv.shape[2]), (n * C * P, D)],
                                  p, training, h.device)
            pd = _attend(qkv, bias, m_att, s)[1]
            o = attn.unpad(attn.from_heads(torch.bmm(pd, qkv[2])[None], n, C, P, w), n, C, P)
            y = linear(o.reshape(-1, D), wp, bp)                                    # (n*C*P, D)
            _drop_add(hc.reshape(-1, D), y, m_res, s, out[b0:b0 + step].view(-1, D))
            saved += [qkv if attn.keep_qkv else None, m_att, m_res]
        if ctx is not None:
            ctx.save_for_backward(h, ln_w, ln_b, wq, bq, wp, *saved)
            ctx.args = (attn, layout, training, eps, w, bias, s, step)
        return out

    @staticmethod
    @custom_fwd(device_type="cpu")
    def forward(ctx, h, ln_w, ln_b, wq, bq, wp, bp, fc_w, fc_b, attn, layout, training, eps):
        return _AttentionBlockFn.run(ctx, h, ln_w, ln_b, wq, bq, wp, bp, fc_w, fc_b, attn, layout,
                                     training, eps)

    @staticmethod
    @custom_bwd(device_type="cpu")
    def backward(ctx, gout):
        h, ln_w, ln_b, wq, bq, wp, *saved = ctx.saved_tensors
        attn, layout, training, eps, w, bias, s, step = ctx.args
        B, C, P, D = h.shape
        grads, dh = _Grads(ln_w.dtype), torch.empty_like(h)
        for i, b0 in enumerate(range(0, B, step)):
            qkv, m_att, m_res = saved[3 * i:3 * i + 3]              # (3, N, L, E) or None, masks
            hc, g = h[b0:b0 + step], gout[b0:b0 + step].reshape(-1, D)
            n = len(hc)
            u, mean, rstd = torch.native_layer_norm(hc, (D,), ln_w, ln_b, eps)
            z, aux = attn.prepare(u, layout, w)
            if qkv is None:                                          # recompute: one matmul
                qkv = attn.to_heads(linear(z.reshape(-1, D), wq, bq), n, C, P, w, 3)
            pm, pd = _attend(qkv, bias, m_att, s)                    # (N, L, L)
            o = attn.unpad(attn.from_heads(torch.bmm(pd, qkv[2])[None], n, C, P, w), n, C, P)
            dy = _dropped(g, m_res, s)                               # (rows, D)
            do, grads["wp"], grads["bp"] = linear_grads(o.reshape(-1, D), wp, dy)
            do = attn.to_heads(attn.pad_rows(do, n, C, P, w), n, C, P, w, 1)[0]   # (N, L, E)
            dqkv = torch.empty_like(qkv)
            dpd = torch.bmm(do, qkv[2].transpose(1, 2))             # (N, L, L)
            torch.bmm(pd.transpose(1, 2), do.to(pd.dtype), out=dqkv[2])
            dpd = _dropped(dpd, m_att, s, inplace=True)
            ds = _softmax_backward(dpd, pm)
            ds.mul_(qkv.shape[-1] ** -0.5)
            torch.bmm(ds, qkv[1], out=dqkv[0])
            torch.bmm(ds.transpose(1, 2), qkv[0], out=dqkv[1])
            dqkv = attn.from_heads(dqkv, n, C, P, w)                # (rows_pad, 3D)
            dz, grads["wq"], grads["bq"] = linear_grads(z.reshape(-1, D), wq, dqkv)
            du = attn.backward_prepare(dz, aux, layout, grads, n, C, P)
            dx, grads["ln_w"], grads["ln_b"] = torch.ops.aten.native_layer_norm_backward(
                du.to(hc.dtype).contiguous(), hc, (D,), mean, rstd, ln_w, ln_b, _LN_GRADS)
            torch.add(dx, g.view_as(dx), out=dh[b0:b0 + step])
        return (dh, *grads.get("ln_w", "ln_b", "wq", "bq", "wp", "bp", "fc_w", "fc_b"),
                None, None, None, None)


class _Grads(dict):
    """Parameter gradients summed over chunks (``grads[k] = v`` adds), in the parameter dtype."""

    def __init__(self, dtype):
        super().__init__()
        self.dtype = dtype

    def __setitem__(self, key, value):
        value = value.to(self.dtype)
        super().__setitem__(key, value + self[key] if key in self else value)

    def get(self, *keys):
        return [dict.get(self, k) for k in keys]


def _attend(qkv, bias, mask, s):
    """Probabilities ``(N, L, L)`` of one attention, before and after dropout."""
    q, k = qkv[0], qkv[1]
    scale = q.shape[-1] ** -0.5
    if bias is None:
        sc = torch.bmm(q, k.transpose(1, 2)).mul_(scale)
    else:
        sc = torch.baddbmm(bias.to(q.dtype), q, k.transpose(1, 2), alpha=scale)
    pm = _softmax(sc)
    return pm, (pm if mask is None else _dropped(pm, mask, s))


def _softmax(x):
    """Softmax over the last dim; for short rows (windows) a composite of vectorised ops is ~5x
    faster on CPU than the row-wise kernel."""
    if x.shape[-1] >= 16:
        return torch.softmax(x, -1)
    e = (x - x.amax(-1, keepdim=True)).exp_()
    return e.div_(e.sum(-1, keepdim=True))


def _softmax_backward(dp, p):
    if p.shape[-1] >= 16:
        return torch._softmax_backward_data(dp.to(p.dtype), p, -1, p.dtype)
    return (dp - (dp * p).sum(-1, keepdim=True)).mul_(p)


class _FeedForwardFn(torch.autograd.Function):
    """``h + Drop(fc2(Drop(gelu(fc1(LN(h))))))`` in token chunks; saves the input and bool
    masks, recomputes LN, fc1 and GELU in the backward pass."""

    @staticmethod
    def run(ctx, h, ln_w, ln_b, w1, b1, w2, b2, p, training, eps, chunk):
        h, D = h.contiguous(), h.shape[-1]
        x, s = h.view(-1, D), keep_scale(p if training else 0.0)
        out, saved = torch.empty_like(x), []
        chunk = chunk_step(len(x), 1, chunk)
        for lo in range(0, len(x), chunk):
            xc = x[lo:lo + chunk]                                      # (n, D)
            u = F.layer_norm(xc, (D,), ln_w, ln_b, eps)
            if ctx is None and not training:                           # inference: GELU fused
                y = linear(linear(u, w1, b1, "gelu"), w2, b2)
                torch.add(xc, y, out=out[lo:lo + chunk])
                continue
            a = linear(u, w1, b1)                                      # (n, F)
            m_hid, m_res = _masks([a.shape, xc.shape], p, training, h.device)
            g = F.gelu(a)
            g = _dropped(g, m_hid, inplace=True)
            y = linear(g, w2 * s, b2)                                  # b2 + s * (m * g) W2^T
            _drop_add(xc, y, m_res, s, out[lo:lo + chunk])
            saved += [m_hid, m_res]                                    # a is recomputed
        if ctx is not None:
            ctx.save_for_backward(h, ln_w, ln_b, w1, b1, w2, *saved)
            ctx.args = (s, eps, chunk)
        return out.view_as(h)

    @staticmethod
    @custom_fwd(device_type="cpu")
    def forward(ctx, h, ln_w, ln_b, w1, b1, w2, b2, p, training, eps, chunk):
        return _FeedForwardFn.run(ctx, h, ln_w, ln_b, w1, b1, w2, b2, p, training, eps, chunk)

    @staticmethod
    @custom_bwd(device_type="cpu")
    def backward(ctx, gout):
        h, ln_w, ln_b, w1, b1, w2, *saved = ctx.saved_tensors
        s, eps, chunk = ctx.args
        D = h.shape[-1]
        x, gout = h.reshape(-1, D), gout.reshape(-1, D)
        dx, grads = torch.empty_like(x), _Grads(ln_w.dtype)
        for i, lo in enumerate(range(0, len(x), chunk)):
            m_hid, m_res = saved[2 * i:2 * i + 2]
            xc, g = x[lo:lo + chunk], gout[lo:lo + chunk]
            u, mean, rstd = torch.native_layer_norm(xc, (D,), ln_w, ln_b, eps)
            a = linear(u, w1, b1)                                      # recomputed (n, F)
            act = F.gelu(a)
            act = _dropped(act, m_hid, inplace=True)
            dy = _dropped(g, m_res, s)                                    # (n, D)
            dact, dw2, grads["b2"] = linear_grads(act, w2 * s, dy)       # (n, F)
            grads["w2"] = dw2 * s                                         # y = act (s w2)^T
            dact = _dropped(dact, m_hid, inplace=True)
            da = torch.ops.aten.gelu_backward(dact.to(a.dtype), a)
            du, grads["w1"], grads["b1"] = linear_grads(u, w1, da)
            dxc, grads["ln_w"], grads["ln_b"] = torch.ops.aten.native_layer_norm_backward(
                du.to(xc.dtype), xc, (D,), mean, rstd, ln_w, ln_b, _LN_GRADS)
            torch.add(dxc, g, out=dx[lo:lo + chunk])
        return (dx.view_as(h), *grads.get("ln_w", "ln_b", "w1", "b1", "w2", "b2"),
                None, None, None, None)
