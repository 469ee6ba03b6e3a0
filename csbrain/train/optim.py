"""AdamW with backbone / head parameter groups and a per-iteration cosine schedule.

Released behaviour (the default): one learning rate, weight decay on every parameter.
Options: separate peak learning rates for the backbone and the head, and no weight decay on
norms, biases and other 1-D parameters (``decay_norm_and_bias=False``): decay pulls weights
towards zero, which is a prior on *weights*; on a LayerNorm gain or a bias it only shrinks a
scale or an offset towards an arbitrary value, so common practice (BERT, ViT, timm) exempts them.
Layer-wise learning-rate decay (``layer_decay`` < 1, BEiT / MAE fine-tuning): one group per
encoder layer, rates falling geometrically from the head down to the patch embedding. A
delayed backbone schedule (``backbone_start``) serves LP-FT: the backbone's rate is 0 while the
head is probed, then warms up and decays over the remaining steps.
"""

from __future__ import annotations

import logging
import math
import re

import torch
from torch import nn

logger = logging.getLogger(__name__)

__all__ = ["param_groups", "build_optimizer", "cosine_with_warmup", "lr_factor", "layer_id"]

_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.")


def _is_no_decay(name: str, p: torch.Tensor) -> bool:
    return p.ndim <= 1 or name.endswith(".bias")


def layer_id(name: str) -> int:
    """Depth of a backbone parameter for layer-wise decay: 0 for the patch embedding and the
    convolutions shared by all layers, ``i + 1`` for encoder layer ``i`` (a name holding
    ``layers.<i>.``; adapter and wrapper names of ``peft`` included)."""
    match = _LAYER.search(name)
    return int(match.group(1)) + 1 if match else 0


def param_groups(model: nn.Module, *, lr: float, weight_decay: float,
                 backbone_lr: float | None = None, head_lr: float | None = None,
                 decay_norm_and_bias: bool = True, layer_decay: float = 1.0) -> list[dict]:
    """Split the trainable parameters into AdamW groups.

    Parameters
    ----------
    model : nn.Module
        A model with a ``backbone`` attribute (task models) or a bare backbone.
    lr : float
        Default peak learning rate.
    weight_decay : float
    backbone_lr, head_lr : float | None
        Peak learning rates of the backbone's and the other parameters (None: ``lr``).
    decay_norm_and_bias : bool
        False exempts 1-D parameters (norm gains, biases, the mask token) from decay.
    layer_decay : float
        1 (default): one backbone group. Below 1: backbone groups ``backbone_layer<k>`` by
        :func:`layer_id` ``k`` of ``L = len(backbone.layers)`` layers, at the backbone rate
        times ``layer_decay ** (L + 1 - k)`` (top layer ``x decay``, patch embedding and
        shared convolutions ``x decay ** (L + 1)``); the head keeps its rate.

    Returns
    -------
    list of dict
        Groups with keys ``params``, ``lr``, ``weight_decay``, ``name``; empty groups are
        dropped. Frozen parameters (``requires_grad=False``) are left out.
    """
    backbone = getattr(model, "backbone", None)
    in_backbone = {id(p) for p in backbone.parameters()} if backbone is not None else set()
    n_layers = len(getattr(backbone if backbone is not None else model, "layers", ()))
    groups: dict[tuple[str, bool], list[torch.Tensor]] = {}
    rates = {"backbone": backbone_lr if backbone_lr is not None else lr,
             "head": head_lr if head_lr is not None else lr}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        part = "backbone" if (backbone is None or id(p) in in_backbone) else "head"
        if part == "backbone" and layer_decay != 1.0:
            k = layer_id(name)
            part = f"backbone_layer{k}"
            rates[part] = rates["backbone"] * layer_decay ** (n_layers + 1 - k)
        decay = decay_norm_and_bias or not _is_no_decay(name, p)
        groups.setdefault((part, decay), []).append(p)
    out = []
    for (part, decay), params in sorted(groups.items(), key=lambda kv: (kv[0][0], not kv[0][1])):
        if rates[part] == 0:
            logger.info("%s learning rate is 0: %d tensors are not trained", part, len(params))
            continue
        out.append({"params": params, "lr": rates[part],
                    "weight_decay": weight_decay if decay else 0.0,
                    "name": f"{part}{'' if decay else '_no_decay'}"})
    if not out:
        raise ValueError("the model has no trainable parameter (frozen backbone and a zero head "
                         "learning rate?); expected at least one parameter with requires_grad")
    return out


def build_optimizer(model: nn.Module, *, lr: float, weight_decay: float,
                    backbone_lr: float | None = None, head_lr: float | None = None,
                    decay_norm_and_bias: bool = True, layer_decay: float = 1.0,
                    betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
                    ) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups` (PyTorch's default betas and eps, as released)."""
    groups = param_groups(model, lr=lr, weight_decay=weight_decay, backbone_lr=backbone_lr,
                          head_lr=head_lr, decay_norm_and_bias=decay_norm_and_bias,
                          layer_decay=layer_decay)
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


def lr_factor(step: int, *, total_steps: int, warmup_steps: int, min_ratio: float) -> float:
    """Multiplier of the peak learning rate at optimiser step ``step`` (0-based).

    Linear warm-up ``(step + 1) / warmup_steps`` for ``step < warmup_steps``, then a cosine from
    1 down to ``min_ratio`` reached at ``step = total_steps - 1`` (and kept after).
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(total_steps - 1 - warmup_steps, 1)
    progress = min((step - warmup_steps) / span, 1.0)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def cosine_with_warmup(optimizer: torch.optim.Optimizer, *, total_steps: int, warmup_steps: int,
                       lr: float, min_lr: float, backbone_start: int = 0
                       ) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-iteration schedule: call ``scheduler.step()`` after every ``optimizer.step()``.

    Every group follows :func:`lr_factor` of its own peak; the final rate is
    ``group_peak * min_lr / lr`` (``min_lr`` for the default group). With ``backbone_start``
    > 0 the groups named ``backbone*`` have rate 0 for the first ``backbone_start`` steps, then
    follow :func:`lr_factor` (warm-up capped to half of it) over the remaining steps.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps={total_steps} must be >= 1")
    if warmup_steps >= total_steps:
        raise ValueError(f"warm-up of {warmup_steps} steps is not shorter than the run "
                         f"({total_steps} steps); lower warmup_steps / warmup_epochs")
    ratio = min_lr / lr

    def factor(step: int) -> float:
        return lr_factor(step, total_steps=total_steps, warmup_steps=warmup_steps,
                         min_ratio=ratio)

    if not backbone_start:
        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    if backbone_start >= total_steps:
        raise ValueError(f"the backbone starts training at step {backbone_start} but the run "
                         f"has {total_steps} steps; lower probe_epochs or raise epochs")
    rest = total_steps - backbone_start
    rest_warmup = min(warmup_steps, rest // 2)

    def delayed(step: int) -> float:
        if step < backbone_start:
            return 0.0
        return lr_factor(step - backbone_start, total_steps=rest, warmup_steps=rest_warmup,
                         min_ratio=ratio)

    lambdas = [delayed if str(g.get("name", "")).startswith("backbone") else factor
               for g in optimizer.param_groups]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)
