"""Sequence classification: one label per window of a sequence of consecutive windows.

The released ISRUC model (CSBrain ``models/model_for_isruc.py``) scores sleep as sequences of
20 consecutive 30-s epochs: the backbone encodes each epoch, its tokens are flattened and
projected (``Linear(C*P*D, 512)`` + GELU), one pre-norm transformer layer (4 heads, feed-forward
2048, GELU, dropout 0.1) mixes the epochs of a sequence, and a linear layer gives each epoch its
logits. The sizes are constructor arguments (defaults: the released ones); the parameter names
are the released ones (``head``, ``sequence_encoder``, ``classifier``).

Shapes::

    x (B, L, C, P, S) -> backbone on (B*L, C, P, S) -> tokens (B*L, C, P, D)
      -> epoch features (B, L, C*P*D) [flatten] or (B, L, D) [mean]
      -> head (B, L, E) -> sequence_encoder (B, L, E) -> classifier (B, L, n_outputs)
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
from csbrain.models.backbone import CSBrain
from csbrain.models.heads import _n_times_of, _TaskModel
from csbrain.models.hub import register

logger = logging.getLogger(__name__)

__all__ = ["CSBrainForSequenceClassification", "EPOCH_FEATURES"]

#: How an epoch's tokens ``(C, P, D)`` become the sequence encoder's input: all tokens
#: flattened (released; needs ``n_times``), or their mean.
EPOCH_FEATURES = ("flatten", "mean")


@register
class CSBrainForSequenceClassification(_TaskModel):
    """Per-window logits for sequences of consecutive windows (the released ISRUC model).

    Parameters
    ----------
    montage, config
        As for :class:`CSBrain`.
    n_outputs : int
        Classes per window (1 for a binary task with BCE or for regression).
    n_times : int, optional
        Samples per window; required by ``epoch_features="flatten"``.
    epoch_features : {"flatten", "mean"}
        ``flatten`` (released): all ``C*P*D`` tokens of a window; ``mean``: their mean ``D``.
    d_sequence, sequence_heads, sequence_feedforward, sequence_layers : int
        Width of the sequence encoder (released 512), its attention heads (4), feed-forward
        width (2048) and layers (1).
    head_dropout : float
        Dropout inside the sequence encoder's layers (released 0.1, PyTorch's default).
    n_chans, chs_info, sfreq, input_window_seconds
        Braindecode-style signal parameters, see :class:`CSBrain`.

    Call with ``x`` ``(B, L, C, P, S)`` or ``(B, L, C, P*S)`` (any ``L``); returns logits
    ``(B, L, n_outputs)``.
    """

    task = "sequence_classification"

    def __init__(self, montage: Any = None, config: CSBrainConfig | None = None, *,
                 n_outputs: int = 5, n_times: int | None = None,
                 epoch_features: str = "flatten", d_sequence: int = 512,
                 sequence_heads: int = 4, sequence_feedforward: int = 2048,
                 sequence_layers: int = 1, head_dropout: float = 0.1,
                 n_chans: int | None = None, chs_info: list[dict] | None = None,
                 sfreq: float = units.SFREQ, input_window_seconds: float | None = None) -> None:
        super().__init__()
        check_int("n_outputs", n_outputs, min_value=1)
        check_option("epoch_features", epoch_features, EPOCH_FEATURES)
        for name, value in (("d_sequence", d_sequence), ("sequence_heads", sequence_heads),
                            ("sequence_feedforward", sequence_feedforward),
                            ("sequence_layers", sequence_layers)):
            check_int(name, value, min_value=1)
        if d_sequence % sequence_heads:
            raise ValueError(f"d_sequence={d_sequence} must be a multiple of "
                             f"sequence_heads={sequence_heads}")
        check_float("head_dropout", head_dropout, min_value=0.0, max_value=1.0)
        n_times = _n_times_of(n_times, input_window_seconds, sfreq)
        self.backbone = CSBrain(montage, config, n_chans=n_chans, chs_info=chs_info,
                                n_times=n_times, sfreq=sfreq)
        cfg = self.backbone.config
        if epoch_features == "flatten" and n_times is None:
            raise ValueError("epoch_features='flatten' needs n_times (samples per window) to "
                             "size its first layer; pass n_times or use epoch_features='mean'")
        self.n_outputs, self.n_times, self.epoch_features = n_outputs, n_times, epoch_features
        self.arch = {"d_sequence": d_sequence, "sequence_heads": sequence_heads,
                     "sequence_feedforward": sequence_feedforward,
                     "sequence_layers": sequence_layers, "head_dropout": head_dropout}
        n_in = (self.backbone.n_chans * (n_times // cfg.patch_size) * cfg.d_model
                if epoch_features == "flatten" else cfg.d_model)
        self.head = nn.Sequential(nn.Linear(n_in, d_sequence), nn.GELU())
        layer = nn.TransformerEncoderLayer(d_sequence, sequence_heads, sequence_feedforward,
                                           head_dropout,
                                           activation=F.gelu, batch_first=True, norm_first=True)
        self.sequence_encoder = nn.TransformerEncoder(layer, sequence_layers,
                                                      enable_nested_tensor=False)
        self.classifier = nn.Linear(d_sequence, n_outputs)

    def _task_kwargs(self) -> dict[str, Any]:
        return {"n_outputs": self.n_outputs, "n_times": self.n_times,
                "epoch_features": self.epoch_features, **self.arch}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone tokens ``(B, L, C, P, D)`` (sorted channel order)."""
        B, L = x.shape[:2]
        h = self.backbone(x.flatten(0, 1))                              # (B*L, C, P, D)
        return h.unflatten(0, (B, L))

    def forward(self, x: torch.Tensor, return_features: bool = False
                ) -> torch.Tensor | dict[str, torch.Tensor]:
        """Per-window logits.

        Parameters
        ----------
        x : torch.Tensor, shape (B, L, C, P, S) or (B, L, C, P*S)
            Sequences of ``L`` consecutive windows in model units. A 4-D tensor is read as
            raw windows ``(B, L, C, T)``; its channels (and ``T`` where the model has
            ``n_times``) must match the model, so a batch of single windows is refused.
        return_features : bool
            Return ``{"features": tokens (B, L, C, P, D), "sequence": encoder output
            (B, L, d_sequence), "logits": (B, L, n_outputs)}``.

        Returns
        -------
        torch.Tensor, shape (B, L, n_outputs) | dict
        """
        n_chans, n_times = self.backbone.n_chans, self.n_times
        raw = x.dim() == 4
        if x.dim() not in (4, 5) or x.shape[2] != n_chans or (
                raw and n_times is not None and x.shape[3] != n_times):
            want = "times" if n_times is None else str(n_times)
            raise ValueError(f"x has shape {tuple(x.shape)}; expected sequences (batch, "
                             f"windows, {n_chans} channels, patches, samples) or (batch, "
                             f"windows, {n_chans} channels, {want})")
        h = self.forward_features(x)                                    # (B, L, C, P, D)
        if self.epoch_features == "flatten":
            if h.shape[3] * self.config.patch_size != self.n_times:
                raise ValueError(f"x has {h.shape[3]} patches per window but the model was "
                                 f"built for n_times={self.n_times}")
            feats = h.flatten(2)                                        # (B, L, C*P*D)
        else:
            feats = h.mean(dim=(2, 3))                                  # (B, L, D)
        seq = self.sequence_encoder(self.head(feats))                   # (B, L, E)
        logits = self.classifier(seq)                                   # (B, L, n_outputs)
        if return_features:
            return {"features": h, "sequence": seq, "logits": logits}
        return logits

    @property
    def final_layer(self) -> nn.Module:
        """The output layer (``classifier``)."""
        return self.classifier

    def reset_head(self, n_outputs: int) -> None:
        """A new output layer with ``n_outputs`` outputs (the sequence encoder is kept)."""
        self.n_outputs = check_int("n_outputs", n_outputs, min_value=1)
        old = self.classifier
        self.classifier = nn.Linear(old.in_features, n_outputs).to(old.weight.device)
        logger.info("new classifier with %d outputs", n_outputs)
