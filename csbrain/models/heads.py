"""Task wrappers around one backbone (PatchTST style): pretraining, classification, regression.

Heads are data: :data:`HEADS` maps a name to a class; a new head is a new row.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from csbrain import units
from csbrain._checks import check_float, check_int, check_option
from csbrain.config import CSBrainConfig
from csbrain.models.backbone import CSBrain, init_weights
from csbrain.models.hub import HubMixin, register
from csbrain.models.released import CLASSIFIER_PREFIX, HEAD_PREFIX, ReleasedMixin

logger = logging.getLogger(__name__)


class FlattenMLPHead(nn.Sequential):
    """The released head: all tokens flattened ``(B, C*P*D)`` -> MLP (ELU, dropout) -> outputs.

    Indices match the released ``classifier`` (1, 4, 7 are the Linear layers), so released
    downstream heads load by name.
    """

    def __init__(self, n_chans: int, n_patches: int, d_model: int, n_outputs: int,
                 dropout: float) -> None:
        super().__init__(
            nn.Flatten(1),
            nn.Linear(n_chans * n_patches * d_model, n_patches * d_model), nn.ELU(),
            nn.Dropout(dropout),
            nn.Linear(n_patches * d_model, d_model), nn.ELU(), nn.Dropout(dropout),
            nn.Linear(d_model, n_outputs))


class MeanPoolHead(nn.Module):
    """Mean of all tokens ``(B, D)`` -> LayerNorm -> dropout -> linear."""

    def __init__(self, n_chans: int, n_patches: int, d_model: int, n_outputs: int,
                 dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(d_model, n_outputs)

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # (B, C, P, D) -> (B, n_outputs)
        return self.fc(self.drop(self.norm(h.mean(dim=(1, 2)))))


class BatchNormMeanPoolHead(MeanPoolHead):
    """Mean of all tokens ``(B, D)`` -> BatchNorm without affine -> dropout -> linear.

    The linear-probe head of MAE (He et al. 2022): each pooled feature is standardised over the
    batch (running statistics in eval). Pretrained encoders can give pooled features that differ
    between windows by a small fraction of their norm, a common part a LayerNorm keeps and this
    removes (the demo's pretrained CSBrain fine-tunes better with it, see the demo report).
    A training batch of one window uses the running statistics.
    """

    def __init__(self, n_chans: int, n_patches: int, d_model: int, n_outputs: int,
                 dropout: float) -> None:
        super().__init__(n_chans, n_patches, d_model, n_outputs, dropout)
        self.norm = nn.BatchNorm1d(d_model, affine=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # (B, C, P, D) -> (B, n_outputs)
        pooled, bn = h.mean(dim=(1, 2)), self.norm
        if self.training and len(pooled) == 1:                 # no batch statistics to take
            z = F.batch_norm(pooled, bn.running_mean, bn.running_var, training=False, eps=bn.eps)
        else:
            z = bn(pooled)
        return self.fc(self.drop(z))


class AttentionPoolHead(nn.Module):
    """One learned query attends over all ``C*P`` tokens -> LayerNorm -> dropout -> linear."""

    def __init__(self, n_chans: int, n_patches: int, d_model: int, n_outputs: int,
                 dropout: float, n_heads: int = 4) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.randn(1, 1, d_model) * d_model ** -0.5)
        heads = n_heads if d_model % n_heads == 0 else 1
        self.attn = nn.MultiheadAttention(d_model, heads, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(d_model, n_outputs)

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # (B, C, P, D) -> (B, n_outputs)
        tokens = h.flatten(1, 2)                                  # (B, C*P, D)
        pooled, _ = self.attn(self.query.expand(len(h), -1, -1), tokens, tokens, need_weights=False)
        return self.fc(self.drop(self.norm(pooled[:, 0])))


HEADS: dict[str, type[nn.Module]] = {
    "flatten": FlattenMLPHead, "mean": MeanPoolHead, "mean_bn": BatchNormMeanPoolHead,
    "attention": AttentionPoolHead}


class _TaskModel(ReleasedMixin, HubMixin, nn.Module):
    """A backbone plus a head; exposes the backbone's config and montage."""

    backbone: CSBrain

    @property
    def config(self) -> CSBrainConfig:
        return self.backbone.config

    @property
    def montage(self):
        return self.backbone.montage


@register
class CSBrainForPretraining(_TaskModel):
    """Masked patch reconstruction: backbone + per-token ``Linear(D, S)`` head.

    Call with ``x`` ``(B, C, P, S)`` and ``mask`` ``(B, C, P)`` (1 = masked, indexing *sorted*
    slots); returns the reconstruction ``(B, C, P, S)`` in sorted channel order.

    Parameters
    ----------
    montage, config, **signal
        As for :class:`CSBrain`.
    spectral_head : bool
        Add a second per-token head ``Linear(D, S // 2 + 1)`` (``spectral_head``) that predicts
        each patch's log-amplitude spectrum (the spectral pretraining targets). The released
        layout (``backbone.*``, ``head.*``) is unchanged.
    """

    def __init__(self, montage: Any = None, config: CSBrainConfig | None = None, *,
                 spectral_head: bool = False, **signal: Any):
        super().__init__()
        self.backbone = CSBrain(montage, config, **signal)
        cfg = self.backbone.config
        self.head = nn.Linear(cfg.d_model, cfg.patch_size)
        init_weights(self.head)
        self.spectral_head = None
        if spectral_head:
            self.spectral_head = nn.Linear(cfg.d_model, cfg.patch_size // 2 + 1)
            init_weights(self.spectral_head)

    def _task_kwargs(self) -> dict[str, Any]:
        return {"spectral_head": True} if self.spectral_head is not None else {}

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, *,
                return_spectral: bool = False, return_features: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """Reconstruction, optionally with the spectral prediction and the backbone tokens.

        Parameters
        ----------
        x : torch.Tensor, shape (B, C, P, S)
            Input channel order.
        mask : torch.Tensor, shape (B, C, P) | None
            True = masked, sorted slots.
        return_spectral : bool
            Also return the spectral head's output ``(B, C, P, S // 2 + 1)``.
        return_features : bool
            Also return the backbone tokens ``(B, C, P, D)``.

        Returns
        -------
        torch.Tensor or tuple
            ``recon`` ``(B, C, P, S)`` alone, else ``(recon, [spectral], [tokens])`` in that
            order; all in sorted channel order.
        """
        h = self.backbone(x, mask)
        out: list[torch.Tensor] = [self.head(h)]
        if return_spectral:
            if self.spectral_head is None:
                raise ValueError("return_spectral=True needs a model built with "
                                 "spectral_head=True")
            out.append(self.spectral_head(h))
        if return_features:
            out.append(h)
        return out[0] if len(out) == 1 else tuple(out)

    def _load_released_heads(self, heads: dict[str, torch.Tensor], what: str) -> None:
        key_w, key_b = f"{HEAD_PREFIX}0.weight", f"{HEAD_PREFIX}0.bias"
        if key_w not in heads or key_b not in heads:
            raise ValueError(f"{what} has no reconstruction head ({key_w}, {key_b}); "
                             "load it with CSBrain.from_released for features only")
        self.head.load_state_dict({"weight": heads[key_w], "bias": heads[key_b]}, strict=True)


@register
class CSBrainForClassification(_TaskModel):
    """Classification (``n_outputs`` classes; 1 logit for binary) on CSBrain tokens.

    Parameters
    ----------
    montage, config
        As for :class:`CSBrain`.
    n_outputs : int
        Number of outputs (classes; 1 for a binary task with BCE or for regression).
    n_times : int, optional
        Samples per window (braindecode style); required by the ``flatten`` head.
    head : {"flatten", "mean", "mean_bn", "attention"}
        ``flatten``: the released MLP over all tokens (large: C*P*D inputs); ``mean``:
        mean-pool + LayerNorm + linear; ``mean_bn``: mean-pool + BatchNorm (no affine) +
        linear, the MAE linear-probe head; ``attention``: attention pooling + linear.
    head_dropout : float
        Dropout inside the head.
    n_chans, chs_info, sfreq
        Braindecode-style signal parameters, see :class:`CSBrain`.
    input_window_seconds : float, optional
        Window length in seconds (braindecode); gives ``n_times`` when that is not set.

    Call with ``x`` ``(B, C, P, S)`` or raw ``(B, C, P*S)``; returns logits ``(B, n_outputs)``
    (no softmax). Braindecode / OpenEEGBench conventions: ``forward(x, return_features=True)``,
    :meth:`forward_features`, :meth:`reset_head`, :attr:`final_layer`, ``get_config`` /
    ``from_config``, ``from_pretrained(..., n_outputs=k)`` (a new head when ``k`` differs).
    """

    task = "classification"

    def __init__(self, montage: Any = None, config: CSBrainConfig | None = None, *,
                 n_outputs: int = 2, n_times: int | None = None, head: str = "mean",
                 head_dropout: float = 0.1, n_chans: int | None = None,
                 chs_info: list[dict] | None = None, sfreq: float = units.SFREQ,
                 input_window_seconds: float | None = None) -> None:
        super().__init__()
        check_int("n_outputs", n_outputs, min_value=1)
        check_option("head", head, list(HEADS))
        n_times = _n_times_of(n_times, input_window_seconds, sfreq)
        self.backbone = CSBrain(montage, config, n_chans=n_chans, chs_info=chs_info,
                                n_times=n_times, sfreq=sfreq)
        cfg = self.backbone.config
        if head == "flatten" and n_times is None:
            raise ValueError("head='flatten' needs n_times (samples per window) to size its "
                             "first layer; pass n_times or use head='mean' / 'attention'")
        n_patches = (n_times // cfg.patch_size) if n_times else 0
        self.n_outputs, self.n_times, self.head_name = n_outputs, n_times, head
        self.head_dropout = head_dropout
        self.head = HEADS[head](self.backbone.n_chans, n_patches, cfg.d_model, n_outputs,
                                head_dropout)
        init_weights(self.head)

    def _task_kwargs(self) -> dict[str, Any]:
        return {"n_outputs": self.n_outputs, "n_times": self.n_times, "head": self.head_name,
                "head_dropout": self.head_dropout}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone tokens ``(B, C, P, D)`` in sorted channel order."""
        return self.backbone(x)

    def forward(self, x: torch.Tensor, return_features: bool = False
                ) -> torch.Tensor | dict[str, torch.Tensor]:
        """Logits, or (braindecode's ``return_features``) the features as well.

        Parameters
        ----------
        x : torch.Tensor, shape (B, C, P, S) or (B, C, P*S)
            Model units, channels in the montage's input order.
        return_features : bool
            Return ``{"features": tokens (B, C, P, D), "cls_token": mean-pooled tokens (B, D),
            "logits": (B, n_outputs)}`` (CSBrain has no class token: the mean stands in).

        Returns
        -------
        torch.Tensor, shape (B, n_outputs) | dict
        """
        h = self.backbone(x)
        patch = self.backbone.config.patch_size
        if self.head_name == "flatten" and h.shape[2] * patch != self.n_times:
            raise ValueError(f"x has {h.shape[2]} patches but the flatten head was built for "
                             f"n_times={self.n_times} ({self.n_times // patch} patches)")
        logits = self.head(h)
        if return_features:
            return {"features": h, "cls_token": h.mean(dim=(1, 2)), "logits": logits}
        return logits

    @property
    def final_layer(self) -> nn.Module:
        """The output layer of the head (braindecode / OpenEEGBench name): ``head.fc``, or
        ``head[7]`` of the flatten head. Saved keys keep the head's names."""
        return self.head[7] if isinstance(self.head, nn.Sequential) else self.head.fc

    @final_layer.setter
    def final_layer(self, layer: nn.Module) -> None:
        if isinstance(self.head, nn.Sequential):
            self.head[7] = layer
        else:
            self.head.fc = layer

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "final_layer":        # the property, not a new submodule (nn.Module's way)
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def reset_head(self, n_outputs: int) -> None:
        """A new head of the same kind with ``n_outputs`` outputs (freshly initialised)."""
        self.n_outputs = check_int("n_outputs", n_outputs, min_value=1)
        n_patches = (self.n_times // self.config.patch_size) if self.n_times else 0
        device = next(self.head.parameters()).device
        self.head = HEADS[self.head_name](self.backbone.n_chans, n_patches, self.config.d_model,
                                          n_outputs, self.head_dropout).to(device)
        init_weights(self.head)
        logger.info("new %s head with %d outputs", self.head_name, n_outputs)

    def _load_released_heads(self, heads: dict[str, torch.Tensor], what: str) -> None:
        clf = {k[len(CLASSIFIER_PREFIX):]: v for k, v in heads.items()
               if k.startswith(CLASSIFIER_PREFIX)}
        if clf and self.head_name == "flatten":
            own = self.head.state_dict()
            if set(clf) == set(own) and all(clf[k].shape == own[k].shape for k in own):
                self.head.load_state_dict(clf, strict=True)
                logger.info("%s: loaded the released classifier head", what)
                return
            have, want = ([(k, tuple(v.shape)) for k, v in sorted(sd.items())] for sd in (clf, own))
            raise ValueError(f"{what}: released classifier head {have} "
                             f"does not fit this flatten head {want}")
        if heads:
            logger.info("%s: head weights %s not used; the %s head starts from random init",
                        what, sorted(heads), self.head_name)


def _n_times_of(n_times: int | None, seconds: float | None, sfreq: float) -> int | None:
    """``n_times``, or braindecode's ``input_window_seconds * sfreq`` (both: they must agree)."""
    if seconds is None:
        return n_times
    from_seconds = round(check_float("input_window_seconds", seconds, min_value=0.0,
                                     inclusive=False) * float(sfreq))
    if n_times is not None and n_times != from_seconds:
        raise ValueError(f"n_times={n_times} does not match input_window_seconds={seconds} at "
                         f"sfreq={sfreq} ({from_seconds} samples); pass one of them")
    return from_seconds


@register
class CSBrainForRegression(CSBrainForClassification):
    """Regression (``n_outputs`` targets, default 1) on CSBrain tokens; see the classifier."""

    task = "regression"

    def __init__(self, montage: Any = None, config: CSBrainConfig | None = None, *,
                 n_outputs: int = 1, **kwargs: Any) -> None:
        super().__init__(montage, config, n_outputs=n_outputs, **kwargs)
