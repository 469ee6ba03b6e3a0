"""The CSBrain backbone: patches in, tokens out (spec §2), for any montage."""

from __future__ import annotations

from typing import Any

import torch
import torch.utils.checkpoint
from torch import nn

from csbrain import units
from csbrain._checks import CSBrainError, CSBrainTypeError
from csbrain.config import CSBrainConfig
from csbrain.models import blocks, fused_cpu
from csbrain.models.hub import HubMixin
from csbrain.models.layout import MontageLayout
from csbrain.models.released import ReleasedMixin
from csbrain.montage import Montage, positions_from_chs, resolve_montage


def resolve_model_montage(montage: Any = None, chs_info: list[dict] | None = None,
                          n_chans: int | None = None):
    """Return a :class:`csbrain.montage.Montage` from a montage spec or braindecode ``chs_info``.

    ``montage`` may be a Montage, a preset name, a list of channel names or an ``mne.Info``;
    ``chs_info`` is a list of dicts with ``ch_name`` (and optionally ``loc``), as in braindecode.
    """
    if montage is None and chs_info is not None:
        names = [ch["ch_name"] for ch in chs_info]
        positions = positions_from_chs(chs_info)
        montage = Montage.from_names(names, positions=positions or None)
    if montage is None:
        raise ValueError("no montage: pass montage= (a Montage, a preset name such as 'TUEG', or "
                         "a list of channel names) or chs_info= (braindecode style)")
    montage = resolve_montage(montage)
    if n_chans is not None and n_chans != montage.n_chans:
        raise ValueError(f"n_chans={n_chans} does not match the montage's "
                         f"{montage.n_chans} channels {list(montage.channels)}")
    return montage


def _is_binary(mask: Any) -> bool:
    """A boolean tensor, or an integer one holding only 0 and 1 (a float mask is refused: a
    mask drawn with ``torch.rand`` would read as entirely masked)."""
    if not isinstance(mask, torch.Tensor) or mask.is_floating_point() or mask.is_complex():
        return False
    return mask.dtype == torch.bool or bool(((mask == 0) | (mask == 1)).all())


class CSBrain(ReleasedMixin, HubMixin, nn.Module):
    """CSBrain backbone.

    Parameters
    ----------
    montage : Montage, str, list of str or mne.Info
        The channels the model reads, resolved by :func:`csbrain.montage.resolve_montage`.
        No weight depends on it; :meth:`set_montage` switches it.
    config : CSBrainConfig, optional
        Architecture; default: the released configuration.
    n_chans, chs_info, n_times, sfreq
        Braindecode-style signal parameters: ``chs_info`` may replace ``montage``; ``n_chans``
        and ``n_times`` are checked against it; ``sfreq`` must be 200 Hz (the input contract).

    Call with ``x`` of shape ``(B, C, P, S)`` (patches) or ``(B, C, P*S)`` (raw samples), in
    100 µV units, channels in the montage's input order, and an optional ``mask`` ``(B, C, P)``
    that indexes *sorted* slots. Returns tokens ``(B, C, P, D)`` in the model's sorted channel
    order: slot ``i`` holds input channel ``channel_order[i]``.

    Speed switches (same results): ``gradient_checkpointing`` (recompute each layer in the
    backward pass: for long windows), ``fused_cpu`` (the eager-CPU kernels of
    :mod:`csbrain.models.fused_cpu`, default on; off = the portable path of
    :mod:`csbrain.models.blocks`, used on GPU and by ``torch.compile``).
    """

    def __init__(self, montage: Any = None, config: CSBrainConfig | None = None, *,
                 n_chans: int | None = None, chs_info: list[dict] | None = None,
                 n_times: int | None = None, sfreq: float = units.SFREQ) -> None:
        super().__init__()
        if float(sfreq) != units.SFREQ:
            raise ValueError(f"sfreq={sfreq} is not supported; CSBrain reads {units.SFREQ:g} Hz "
                             "signals: resample first (csbrain.data preprocessing does)")
        self.config = config = config or CSBrainConfig()
        if n_times is not None and n_times % config.patch_size:
            raise ValueError(f"n_times={n_times} is not a multiple of the patch size "
                             f"{config.patch_size}")
        self.n_times = n_times
        self.patch_embedding = blocks.PatchEmbedding(config)
        self.temporal_conv = blocks.TemporalConv(config)
        self.region_conv = blocks.RegionConv(config)
        self.layers = nn.ModuleList(blocks.EncoderLayer(config) for _ in range(config.n_layers))
        self.check_finite = True
        #: Recompute each layer's activations in the backward pass (saves memory on long windows
        #: for about one extra forward pass of compute).
        self.gradient_checkpointing = False
        #: Run the residual blocks as fused kernels in eager CPU mode (see fused_cpu.plan).
        self.fused_cpu = True
        self._layouts: dict[Montage, MontageLayout] = {}
        self.set_montage(resolve_model_montage(montage, chs_info, n_chans))
        init_weights(self)

    # ----- montage -----
    def set_montage(self, montage: Any) -> None:
        """Switch the channels the model reads (weights unchanged); each montage's layout is
        built once and kept (a corpus of several montages switches every batch)."""
        montage = resolve_model_montage(montage)
        device = next(self.parameters()).device
        layout = self._layouts.get(montage)
        if layout is None or layout.order.device != device:       # new, or the model moved
            layout = self._layouts[montage] = MontageLayout(montage, self.config.kernel_sizes)
        self.montage, self.layout = montage, layout.to(device)

    @property
    def channel_order(self) -> list[int]:
        """The permutation applied to the input channels (the released ``sorted_indices``)."""
        return list(self.montage.order)

    @property
    def n_chans(self) -> int:
        return self.montage.n_chans

    # ----- forward -----
    def as_patches(self, x: torch.Tensor) -> torch.Tensor:
        """Validate ``x`` and return it as ``(B, C, P, S)`` (raw ``(B, C, P*S)`` is reshaped).

        Any floating-point dtype is cast to the model's (float64 from MNE included).
        """
        S = self.config.patch_size
        if not isinstance(x, torch.Tensor):
            raise CSBrainTypeError(f"x must be a torch.Tensor, got {type(x).__name__} (use "
                                   f"torch.from_numpy; csbrain.data.to_model_input prepares "
                                   f"arrays and MNE objects)")
        if not x.is_floating_point():
            raise CSBrainTypeError(f"x has dtype {x.dtype}; expected a floating-point tensor "
                                   f"in model units (100 µV)")
        dtype = next(self.parameters()).dtype
        if x.dtype != dtype:
            x = x.to(dtype)
        if x.dim() in (3, 4) and x.shape[0] == 0:
            raise CSBrainError(f"x has an empty batch (shape {tuple(x.shape)}); expected at "
                               f"least one window")
        if x.dim() == 3:
            if x.shape[-1] % S:
                raise ValueError(f"x has {x.shape[-1]} samples per channel, not a multiple of the "
                                 f"patch size {S} ({S / units.SFREQ:g} s at {units.SFREQ:g} Hz)")
            x = x.reshape(x.shape[0], x.shape[1], x.shape[-1] // S, S)
        elif x.dim() != 4:
            raise ValueError(f"x has shape {tuple(x.shape)} (rank {x.dim()}); expected "
                             f"(batch, channels, patches, {S}) or (batch, channels, samples)")
        if x.shape[-1] != S:
            raise ValueError(f"x has patches of {x.shape[-1]} samples; expected {S} "
                             f"(shape (batch, channels, patches, {S}))")
        if x.shape[1] != self.n_chans:
            raise ValueError(f"x has {x.shape[1]} channels but the montage has {self.n_chans}: "
                             f"{list(self.montage.channels)}")
        if x.shape[2] == 0:
            raise ValueError("x has 0 patches; expected at least one")
        if self.check_finite and not torch.compiler.is_compiling() and not torch.isfinite(x).all():
            raise ValueError("x contains NaN or Inf values; clean or reject those windows first")
        return x

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.as_patches(x)[:, self.layout.order]                # (B, C, P, S) sorted
        if mask is not None and not _is_binary(mask):
            raise CSBrainTypeError(f"mask must be a boolean tensor (True = masked) or integer "
                                   f"0/1, got {getattr(mask, 'dtype', type(mask).__name__)}; "
                                   f"e.g. mask = torch.rand(B, C, P) < 0.5")
        if mask is not None and mask.shape != x.shape[:3]:
            raise ValueError(f"mask has shape {tuple(mask.shape)}; expected {tuple(x.shape[:3])} "
                             "(batch, channels, patches), indexing sorted slots")
        h = self.patch_embedding(x, mask)                            # (B, C, P, D)
        plan = fused_cpu.plan(self, h)                   # None: the portable path everywhere
        checkpoint = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        for i, layer in enumerate(self.layers):
            fused = (plan.region_conv, plan.layers[i]) if plan else (None, (None, None, None))
            if checkpoint:
                h = torch.utils.checkpoint.checkpoint(self._layer, h, layer, *fused,
                                                      use_reentrant=False)
            else:
                h = self._layer(h, layer, *fused)
        return h

    def _layer(self, h: torch.Tensor, layer: nn.Module, region_conv, fused_layer) -> torch.Tensor:
        h = self.temporal_conv(h)                             # h + conv; shared by all layers
        h = region_conv(h) if region_conv else self.region_conv(h, self.layout)   # h + conv
        return layer(h, self.layout, fused_layer)

    def extra_repr(self) -> str:
        return f"config={self.config}"


def init_weights(module: nn.Module) -> None:
    """Released initialisation: Kaiming-normal (fan_out, relu) on Linear weights, except the
    attention input projections (Xavier-uniform weight, zero bias, as nn.MultiheadAttention)
    and zero bias on attention output projections; PyTorch defaults elsewhere."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if isinstance(m, (blocks.WindowAttention, blocks.RegionAttention)):
            nn.init.xavier_uniform_(m.qkv.weight)
            nn.init.zeros_(m.qkv.bias)
            nn.init.zeros_(m.proj.bias)
