"""Attention weights of CSBrain's inter-window and inter-region attention, read by hooks.

The model computes attention through ``F.scaled_dot_product_attention``, which returns no
weights; a forward hook on each attention module recomputes ``softmax(q k^T / sqrt(E))`` from
the module's own input and weights (the same arithmetic), leaving the output untouched. A hook
makes :func:`csbrain.models.fused_cpu.plan` run the hooked blocks on the portable path, whose
outputs equal the fused path's (``tests/explain/test_explain.py``).

Shapes: B windows, C channels (sorted order), P patches, n windows of patches, H heads,
E head dim, R = 5 regions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F

__all__ = ["read_attention"]


def _window_weights(m, u: torch.Tensor) -> torch.Tensor:
    """Inter-window weights ``(B, n, n)`` averaged over heads, channels and offsets."""
    B, C, P, D = u.shape
    H, E = m.n_heads, D // m.n_heads
    w = min(P, m.window_size)
    n = -(-P // w)
    u = F.pad(u, (0, 0, 0, n * w - P))
    qkv = m.qkv(u).reshape(B * C, n, w, 3, H, E)
    q, k, _ = qkv.permute(3, 0, 2, 4, 1, 5).reshape(3, B * C * w, H, n, E).unbind(0)
    a = torch.softmax(q @ k.transpose(-1, -2) / E ** 0.5, dim=-1)       # (B*C*w, H, n, n)
    return a.reshape(B, C * w * H, n, n).mean(1)


def _region_weights(m, u: torch.Tensor, layout) -> torch.Tensor:
    """Inter-region (channel x channel) weights ``(B, C, C)`` averaged over heads and patches."""
    B, C, P, D = u.shape
    H, E = m.n_heads, D // m.n_heads
    g = torch.matmul(layout.region_avg.to(u.dtype), u.reshape(B, C, P * D))
    z = u + m.region_fc(g.view(B, -1, P, D)).index_select(1, layout.region_index)
    qkv = m.qkv(z).reshape(B, C, P, 3, H, E).permute(3, 0, 2, 4, 1, 5)
    q, k, _ = qkv.reshape(3, B * P, H, C, E).unbind(0)
    s = (q @ k.transpose(-1, -2) / E ** 0.5).masked_fill(~layout.attn_mask, float("-inf"))
    return torch.softmax(s, dim=-1).reshape(B, P * H, C, C).mean(1)


@contextlib.contextmanager
def read_attention(model: torch.nn.Module) -> Iterator[dict[str, list[torch.Tensor]]]:
    """Collect attention weights of every layer during forward passes inside the block.

    Yields a dict ``{"window": [per layer (B, n, n)], "region": [per layer (B, C, C)]}``
    filled by each forward pass (the last pass's weights; detached, on CPU). Channels of the
    region matrices are in the model's sorted order.
    """
    backbone = getattr(model, "backbone", model)
    found: dict[str, list[torch.Tensor]] = {"window": [], "region": []}
    handles = []
    n_layers = len(backbone.layers)

    def keep(kind: str, i: int, value: torch.Tensor) -> None:
        if i == 0:
            found[kind].clear()
        found[kind].append(value.detach().float().cpu())
        del found[kind][n_layers:]

    for i, layer in enumerate(backbone.layers):
        handles.append(layer.window_attn.register_forward_hook(
            lambda m, inp, out, i=i: keep("window", i, _window_weights(m, inp[0]))))
        handles.append(layer.region_attn.register_forward_hook(
            lambda m, inp, out, i=i: keep("region", i, _region_weights(m, inp[0],
                                                                      backbone.layout))))
    try:
        with torch.no_grad():
            yield found
    finally:
        for h in handles:
            h.remove()
