"""AdamW with backbone / head parameter groups and a per-iteration cosine schedule.

Released behaviour (the default): one learning rate, weight decay on every parameter.
Options: separate peak learning rates for the backbone and the head, and no weight decay on
norms, biases and other 1-D parameters (``decay_norm_and_bias=False``): decay pulls weights
towards zero, which is a prior on *weights*; on a LayerNorm gain or a bias it only shrinks a
scale or an offset towards an arbitrary value, so common practice (BERT, ViT, timm) exempts them.
"""

from __future__ import annotations

import logging
import math

import torch
from torch import nn

logger = logging.getLogger(__name__)

__all__ = ["param_groups", "build_optimizer", "cosine_with_warmup", "lr_factor"]


def _is_no_decay(name: str, p: torch.Tensor) -> bool:
    return p.ndim <= 1 or name.endswith(".bias")


def param_groups(model: nn.Module, *, lr: float, weight_decay: float,
                 backbone_lr: float | None = None, head_lr: float | None = None,
                 decay_norm_and_bias: bool = True) -> list[dict]:
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

    Returns
    -------
    list of dict
        Groups with keys ``params``, ``lr``, ``weight_decay``, ``name``; empty groups are
        dropped. Frozen parameters (``requires_grad=False``) are left out.
    """
    backbone = getattr(model, "backbone", None)
    in_backbone = {id(p) for p in backbone.parameters()} if backbone is not None else set()
    groups: dict[tuple[str, bool], list[torch.Tensor]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        part = "backbone" if (backbone is None or id(p) in in_backbone) else "head"
        decay = decay_norm_and_bias or not _is_no_decay(name, p)
        groups.setdefault((part, decay), []).append(p)
    rates = {"backbone": backbone_lr if backbone_lr is not None else lr,
             "head": head_lr if head_lr is not None else lr}
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
                    decay_norm_and_bias: bool = True,
                    betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
                    ) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups` (PyTorch's default betas and eps, as released)."""
    groups = param_groups(model, lr=lr, weight_decay=weight_decay, backbone_lr=backbone_lr,
                          head_lr=head_lr, decay_norm_and_bias=decay_norm_and_bias)
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
                       lr: float, min_lr: float) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-iteration schedule: call ``scheduler.step()`` after every ``optimizer.step()``.

    Every group follows :func:`lr_factor` of its own peak; the final rate is
    ``group_peak * min_lr / lr`` (``min_lr`` for the default group).
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

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
