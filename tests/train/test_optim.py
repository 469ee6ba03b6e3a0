"""AdamW parameter groups (released: decay everything) and the warm-up + cosine schedule."""

from __future__ import annotations

import pytest

from csbrain.config import CSBrainConfig
from csbrain.models import CSBrainForClassification
from csbrain.train.optim import build_optimizer, cosine_with_warmup, param_groups
from tests.train.helpers import CHANNELS


def _model():
    return CSBrainForClassification(CHANNELS, CSBrainConfig.from_preset("tiny", n_layers=1),
                                    n_outputs=2, head="mean")


def test_released_default_decays_every_trainable_parameter():
    model = _model()
    groups = param_groups(model, lr=1e-3, weight_decay=0.05)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert sum(len(g["params"]) for g in groups) == len(trainable)
    assert all(g["weight_decay"] == 0.05 for g in groups)
    assert {g["name"] for g in groups} == {"backbone", "head"}
    # the fixed zero mask token is not trained
    assert not model.backbone.patch_embedding.mask_token.requires_grad


def test_norms_and_biases_can_be_exempted_and_lrs_split():
    model = _model()
    groups = {g["name"]: g for g in param_groups(model, lr=1e-3, weight_decay=0.05,
                                                 backbone_lr=1e-4, head_lr=1e-2,
                                                 decay_norm_and_bias=False)}
    assert set(groups) == {"backbone", "backbone_no_decay", "head", "head_no_decay"}
    assert groups["backbone_no_decay"]["weight_decay"] == 0.0
    assert all(p.ndim <= 1 for p in groups["head_no_decay"]["params"])
    assert all(p.ndim > 1 for p in groups["backbone"]["params"])
    assert groups["backbone"]["lr"] == 1e-4 and groups["head_no_decay"]["lr"] == 1e-2


def test_frozen_backbone_leaves_only_the_head():
    model = _model()
    model.backbone.requires_grad_(False)
    groups = param_groups(model, lr=1e-3, weight_decay=0.0)
    assert [g["name"] for g in groups] == ["head"]
    with pytest.raises(ValueError, match="no trainable parameter"):
        param_groups(model, lr=1e-3, weight_decay=0.0, head_lr=0.0)


def test_schedule_warms_up_linearly_then_cosine_to_min_lr_per_step():
    model = _model()
    opt = build_optimizer(model, lr=1e-3, weight_decay=0.0, head_lr=1e-2)
    sched = cosine_with_warmup(opt, total_steps=10, warmup_steps=4, lr=1e-3, min_lr=1e-5)
    seen = []
    for _ in range(10):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    backbone = [s[0] for s in seen]
    assert backbone[:4] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3])
    assert backbone[9] == pytest.approx(1e-5)                    # reaches min_lr on the last step
    assert all(a > b for a, b in zip(backbone[4:], backbone[5:]))
    assert seen[9][1] == pytest.approx(1e-4)                     # head: min scaled by its peak
    with pytest.raises(ValueError, match="warm-up of 10 steps is not shorter"):
        cosine_with_warmup(opt, total_steps=10, warmup_steps=10, lr=1e-3, min_lr=0.0)
