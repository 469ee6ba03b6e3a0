"""The fused CPU path: when it runs, when it steps aside, what it saves, and its chunking.

The numbers themselves are tied to the naive reference in ``test_fast_vs_naive.py``; here the
fused path is compared with the portable path of the same model (float64, dropout off), where
both agree to rounding (~1e-14).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from csbrain import CSBrain, CSBrainConfig
from csbrain.models import cpu_ops, fused_cpu

CFG = CSBrainConfig.from_preset("tiny", n_layers=2, temporal_mode="released")


def make_model(**kw) -> CSBrain:
    torch.manual_seed(0)
    return CSBrain(["Fp1", "F3", "C3", "Cz", "P3", "O1", "T7"], CFG.replace(**kw)).double().eval()


def outputs_and_grads(model: CSBrain, x: torch.Tensor, fused: bool):
    model.fused_cpu = fused
    model.zero_grad()
    x = x.clone().requires_grad_()
    out = model(x)
    (out * torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)).sum().backward()
    return out.detach(), x.grad, {k: p.grad.clone() for k, p in model.named_parameters()
                                  if p.grad is not None}


def assert_same(a, b, tol=1e-10):
    out_a, gx_a, g_a = a
    out_b, gx_b, g_b = b
    assert (out_a - out_b).abs().max() < tol
    assert (gx_a - gx_b).abs().max() < tol * gx_b.abs().max()
    assert g_a.keys() == g_b.keys()
    scale = max(g.abs().max() for g in g_b.values())   # (conv biases before a GroupNorm: ~0)
    for k in g_a:
        assert (g_a[k] - g_b[k]).abs().max() <= tol * scale, k


def test_plain_model_runs_every_block_fused():
    model = make_model()
    plan = fused_cpu.plan(model, torch.zeros(1))
    assert plan.region_conv is not None
    assert [[type(s).__name__ for s in layer] for layer in plan.layers] == \
        [["AttentionSpec", "AttentionSpec", "FeedForwardSpec"]] * 2
    assert [s.kind for s in plan.layers[0][:2]] == ["window", "region"]
    model.fused_cpu = False
    assert fused_cpu.plan(model, torch.zeros(1)) is None


def test_multi_chunk_equals_one_chunk_and_portable(monkeypatch):
    """A small ``CHUNK_TOKENS`` makes every fused block (region conv, both attentions,
    feed-forward, in every layer) run several chunks, of unequal sizes: forward and backward
    agree with one chunk and with the portable path."""
    model = make_model()
    x = torch.randn(3, 7, 5, 200, dtype=torch.float64)         # 3 samples of 35 tokens
    one = outputs_and_grads(model, x, fused=True)
    calls = []

    def spy(total, per_item, chunk_tokens):
        step = chunk_step(total, per_item, chunk_tokens)
        calls.append((total, step))
        return step

    chunk_step = cpu_ops.chunk_step
    monkeypatch.setattr(fused_cpu, "CHUNK_TOKENS", 70)          # samples 2 + 1, tokens 53 + 52
    monkeypatch.setattr(cpu_ops, "chunk_step", spy)             # fused_cpu calls ops.chunk_step
    many = outputs_and_grads(model, x, fused=True)
    assert len(calls) == 4 * CFG.n_layers                        # every fused block, forward
    assert all(step < total and total % step for total, step in calls), calls
    assert_same(many, one)
    assert_same(many, outputs_and_grads(model, x, fused=False))


class LowRankLinear(nn.Linear):
    """A LoRA-style adapter that is an ``nn.Linear`` subclass: ``W x + b + B A x``."""

    def __init__(self, base: nn.Linear, rank: int = 2) -> None:
        super().__init__(base.in_features, base.out_features, dtype=base.weight.dtype)
        self.load_state_dict(base.state_dict())
        self.a = nn.Parameter(0.3 * torch.randn(rank, base.in_features, dtype=base.weight.dtype))
        self.b = nn.Parameter(0.3 * torch.randn(base.out_features, rank, dtype=base.weight.dtype))

    def forward(self, x):
        return super().forward(x) + x @ self.a.t() @ self.b.t()


class Wrapped(nn.Module):
    """A peft-style wrapper holding the original linear layer plus a delta."""

    def __init__(self, base: nn.Linear) -> None:
        super().__init__()
        self.base = base
        self.delta = nn.Linear(base.in_features, base.out_features, bias=False,
                               dtype=base.weight.dtype)

    def forward(self, x):
        return self.base(x) + self.delta(x)


class Scale(nn.Module):
    def forward(self, w):
        return 1.5 * w


def _hook(layer):
    layer.fc1.register_forward_hook(lambda m, args, out: out * 1.5)


def _subclass(layer):
    layer.window_attn.qkv = LowRankLinear(layer.window_attn.qkv)


def _wrapper(layer):
    layer.region_attn.proj = Wrapped(layer.region_attn.proj)


def _region_fc(layer):
    layer.region_attn.region_fc = LowRankLinear(layer.region_attn.region_fc)


def _parametrized(layer):
    parametrize.register_parametrization(layer.fc2, "weight", Scale())


@pytest.mark.parametrize("change, block", [(_subclass, 0), (_wrapper, 1), (_region_fc, 1),
                                           (_hook, 2), (_parametrized, 2)])
def test_changed_linear_layers_run_on_the_portable_path(change, block):
    """A wrapped, subclassed, hooked or parametrized linear layer is never skipped: its block
    steps aside (the others stay fused), so the fused model computes what the portable one does,
    gradients included (those of the adapter's own weights too)."""
    model = make_model()
    x = torch.randn(2, 7, 4, 200, dtype=torch.float64)
    before = outputs_and_grads(model, x, fused=False)[0]
    change(model.layers[0])
    model.fused_cpu = True
    plan = fused_cpu.plan(model, x)
    assert plan.layers[0][block] is None
    assert all(s is not None for i, s in enumerate(plan.layers[0]) if i != block)
    assert all(s is not None for s in plan.layers[1])
    portable = outputs_and_grads(model, x, fused=False)
    assert (portable[0] - before).abs().max() > 1e-3               # the change matters
    assert_same(outputs_and_grads(model, x, fused=True), portable)


def test_global_hooks_and_non_cpu_use_the_portable_path():
    model = make_model()
    handle = nn.modules.module.register_module_forward_hook(lambda m, args, out: None)
    try:
        assert fused_cpu.plan(model, torch.zeros(1)) is None
    finally:
        handle.remove()
    assert fused_cpu.plan(model, torch.zeros(1, device="meta")) is None


def test_fused_blocks_save_only_inputs_parameters_and_bool_masks():
    """Memory: a training step saves each block's input, its parameters and bool dropout masks
    (q/k/v, probabilities and activations are recomputed); the fused path has no other switch
    than ``fused_cpu`` and ``CHUNK_TOKENS`` (the dead ``keep_qkv`` option is gone)."""
    model = make_model(dropout=0.3).float().train()
    assert not any(hasattr(m, "keep_qkv") for m in model.modules())
    plan = fused_cpu.plan(model, torch.zeros(1))
    layer = model.layers[0]
    B, C, P, D = 2, 7, 8, CFG.d_model
    h = torch.randn(B, C, P, D, requires_grad=True)
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = plan.region_conv(h)
        out = layer(out, model.layout, plan.layers[0])
    out.sum().backward()
    params = {id(p) for p in layer.parameters()} | {id(t) for t in plan.region_conv.params}
    floats = [t for t in saved if t.dtype != torch.bool and id(t) not in params]
    assert [tuple(t.shape) for t in floats] == [(C, B * P, D)] + [(B, C, P, D)] * 3
    assert sum(t.dtype == torch.bool for t in saved) == 2 * 3     # two masks per block
