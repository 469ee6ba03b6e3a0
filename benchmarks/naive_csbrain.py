"""Naive CSBrain: a direct transcription of the spec (§2) following the RELEASED code's structure.

This is the speed baseline of ``benchmarks/model_speed.py`` and the reference of
``tests/models/test_fast_vs_naive.py``. It is deliberately written the way the released code is:

- region convolutions: a Python loop over regions and kernel sizes, a circular ``F.pad`` per
  region (constant padding for a single electrode), ``(k, 1)`` ``Conv2d`` kernels, and a
  zero-filled output written slice by slice;
- inter-region attention: a loop over regions for the region means and a loop over electrodes to
  broadcast them into a zero-filled tensor; a dense float ``-inf`` mask; ``nn.MultiheadAttention``;
- inter-window attention and feed-forward with the released permute/reshape copies;
- the temporal convolution as ``(k, 1)`` ``Conv2d`` on the ``view(B*C, D, P, 1)`` memory layout.

Parameter names and shapes are those of :class:`csbrain.CSBrain` except inside the attentions,
where ``nn.MultiheadAttention`` names them ``in_proj_weight`` / ``out_proj.*``;
:func:`naive_from_fast` copies a fast model's weights in (the adapter). It is never imported by
the package.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from csbrain.models.blocks import PatchEmbedding
from csbrain.montage import N_REGIONS


class NaivePatchEmbedding(PatchEmbedding):
    """The package's patch embedding layers (parameters are the spec's, not a speed matter),
    with the released forward pass (clone + boolean-index masking, contiguous copies)."""

    def forward(self, x, mask=None):
        bz, ch_num, patch_num, patch_size = x.shape
        if mask is None:
            mask_x = x
        else:
            mask_x = x.clone()
            mask_x[mask == 1] = self.mask_token
        mask_x = mask_x.contiguous().view(bz, 1, ch_num * patch_num, patch_size)
        patch_emb = self.proj_in(mask_x)
        patch_emb = patch_emb.permute(0, 2, 1, 3).contiguous().view(bz, ch_num, patch_num,
                                                                    self.d_model)
        mask_x = mask_x.contiguous().view(bz * ch_num * patch_num, patch_size)
        spectral = torch.fft.rfft(mask_x, dim=-1, norm="forward")
        spectral = torch.abs(spectral).contiguous().view(bz, ch_num, patch_num, patch_size // 2 + 1)
        patch_emb = patch_emb + self.spectral_drop(self.spectral_proj(spectral))
        pos = self.pos_conv(patch_emb.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return patch_emb + pos


class NaiveTemporalConv(nn.Module):
    """Released: ``Conv2d`` with ``(k, 1)`` kernels on ``x.view(B*C, D, P, 1)``.

    Weights are stored as ``Conv1d`` weights ``(dk, D, k)`` (the fast model's shapes) and used
    as ``(dk, D, k, 1)`` kernels.
    """

    def __init__(self, cfg) -> None:
        super().__init__()
        self.mode = cfg.temporal_mode
        self.kernel_sizes = cfg.kernel_sizes
        self.convs = nn.ModuleList(nn.Conv1d(cfg.d_model, dk, k, padding=k // 2)
                                   for k, dk in zip(cfg.kernel_sizes, cfg.scale_dims))

    def forward(self, x):
        batch, chans, time, d_model = x.shape
        if self.mode == "released":
            x = x.view(batch * chans, d_model, time, 1)
        else:  # paper: a convolution along patches, features as channels
            x = x.permute(0, 1, 3, 2).contiguous().view(batch * chans, d_model, time, 1)
        fmaps = [F.conv2d(x, conv.weight.unsqueeze(-1), conv.bias, padding=((k - 1) // 2, 0))
                 for conv, k in zip(self.convs, self.kernel_sizes)]
        x = torch.cat(fmaps, dim=1)
        if self.mode == "released":
            return x.view(batch, chans, time, -1)
        return x.squeeze(-1).permute(0, 2, 1).contiguous().view(batch, chans, time, -1)


class NaiveRegionConv(nn.Module):
    """Released BrainEmbedEEGLayer: loop over regions, circular pad, (k, 1) conv per region.

    Weights use the fast model's stacked shapes: ``weights[i]`` ``(5, dk, D, k)``,
    ``biases[i]`` ``(5, dk)``.
    """

    def __init__(self, cfg) -> None:
        super().__init__()
        self.kernel_sizes = cfg.kernel_sizes
        self.dim_out = cfg.d_model
        d = cfg.d_model
        self.weights = nn.ParameterList(
            nn.Parameter(torch.empty(N_REGIONS, dk, d, k))
            for k, dk in zip(cfg.kernel_sizes, cfg.scale_dims))
        self.biases = nn.ParameterList(nn.Parameter(torch.empty(N_REGIONS, dk))
                                       for dk in cfg.scale_dims)
        for w, b, k in zip(self.weights, self.biases, cfg.kernel_sizes):
            for r in range(N_REGIONS):
                nn.init.kaiming_uniform_(w[r], a=math.sqrt(5))
            nn.init.uniform_(b, -1 / math.sqrt(d * k), 1 / math.sqrt(d * k))

    def forward(self, x, area_config):
        batch, chans, T, Fd = x.shape
        output = torch.zeros((batch, chans, T, self.dim_out), device=x.device, dtype=x.dtype)
        for region, (channel_slice, n_electrodes) in area_config.items():
            x_region = x[:, channel_slice, :, :]
            x_trans = x_region.permute(0, 2, 1, 3).reshape(-1, n_electrodes, Fd)
            x_trans = x_trans.permute(0, 2, 1).unsqueeze(-1)              # (B*T, D, n, 1)
            fmap_outputs = []
            for w, b, k in zip(self.weights, self.biases, self.kernel_sizes):
                pad_size = (k - 1) // 2
                if n_electrodes == 1:
                    x_padded = F.pad(x_trans, (0, 0, pad_size, pad_size), mode="constant", value=0)
                else:
                    x_padded = F.pad(x_trans, (0, 0, pad_size, pad_size), mode="circular")
                fmap_outputs.append(F.conv2d(x_padded, w[region].unsqueeze(-1), b[region]))
            fmap_cat = torch.cat(fmap_outputs, dim=1)
            fmap_out = fmap_cat.squeeze(-1).permute(0, 2, 1).reshape(batch, T, n_electrodes,
                                                                     self.dim_out)
            output[:, channel_slice, :, :] = fmap_out.permute(0, 2, 1, 3)
        return output


def build_region_mask(region_indices: dict[int, list[int]], n_chans: int) -> torch.Tensor:
    """Released RegionAttentionMaskBuilder: dense float mask, -inf except within groups."""
    mask = torch.ones(n_chans, n_chans) * float("-inf")
    n_groups = max(len(idx) for idx in region_indices.values())
    groups = [[] for _ in range(n_groups)]
    for g in range(n_groups):
        for indices in region_indices.values():
            groups[g].append(indices[g % len(indices)])
    for members in groups:
        for i in members:
            for j in members:
                mask[i, j] = 0
    return mask


class NaiveEncoderLayer(nn.Module):
    """Released CSBrain_TransformerEncoderLayer (pre-norm; window, region, feed-forward)."""

    def __init__(self, cfg) -> None:
        super().__init__()
        d = cfg.d_model
        self.window_size = cfg.window_size
        self.inter_region_attn = nn.MultiheadAttention(d, cfg.n_heads, dropout=cfg.dropout,
                                                       batch_first=True)
        self.inter_window_attn = nn.MultiheadAttention(d, cfg.n_heads, dropout=cfg.dropout,
                                                       batch_first=True)
        self.global_fc = nn.Linear(d, d)
        self.fc1 = nn.Linear(d, cfg.dim_feedforward)
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc2 = nn.Linear(cfg.dim_feedforward, d)
        self.norm1 = nn.LayerNorm(d, eps=cfg.norm_eps)
        self.norm2 = nn.LayerNorm(d, eps=cfg.norm_eps)
        self.norm3 = nn.LayerNorm(d, eps=cfg.norm_eps)
        self.dropout1 = nn.Dropout(cfg.dropout)
        self.dropout2 = nn.Dropout(cfg.dropout)
        self.dropout3 = nn.Dropout(cfg.dropout)
        self.region_indices: dict[int, list[int]] = {}
        self.register_buffer("region_attn_mask", torch.zeros(0, 0), persistent=False)

    def set_regions(self, region_indices: dict[int, list[int]], n_chans: int) -> None:
        self.region_indices = region_indices
        mask = build_region_mask(region_indices, n_chans)
        self.region_attn_mask = mask.to(self.norm1.weight.device)

    def forward(self, x):
        x = x + self._inter_window_attention(self.norm1(x))
        x = x + self._inter_region_attention(self.norm2(x))
        return x + self._ff_block(self.norm3(x))

    def _inter_region_attention(self, x):
        batch, chans, T, Fd = x.shape
        x_flat = x.permute(0, 2, 1, 3).reshape(batch * T, chans, Fd)
        region_global = {}
        for name, indices in self.region_indices.items():
            region_global[name] = x[:, indices, :, :].mean(dim=1, keepdim=True)
        global_features = torch.zeros_like(x_flat)
        for name, indices in self.region_indices.items():
            g = region_global[name].permute(0, 2, 1, 3).reshape(batch * T, 1, Fd)
            for idx in indices:
                global_features[:, idx:idx + 1, :] = g
        x_enhanced = x_flat + self.global_fc(global_features)
        out = self.inter_region_attn(x_enhanced, x_enhanced, x_enhanced, need_weights=False,
                                     attn_mask=self.region_attn_mask.to(x.dtype))[0]
        out = out.reshape(batch, T, chans, Fd).permute(0, 2, 1, 3)
        return self.dropout1(out)

    def _inter_window_attention(self, x):
        batch, chans, T, Fd = x.shape
        window_size = min(T, self.window_size)
        original_T = T
        if T % window_size != 0:
            pad_length = window_size - (T % window_size)
            x = F.pad(x, (0, 0, 0, pad_length))
            T = T + pad_length
        num_windows = T // window_size
        x = x.reshape(batch, chans, num_windows, window_size, Fd)
        x = x.permute(0, 3, 1, 2, 4).reshape(batch * window_size * chans, num_windows, Fd)
        x = self.inter_window_attn(x, x, x, need_weights=False)[0]
        x = x.reshape(batch, window_size, chans, num_windows, Fd).permute(0, 2, 3, 1, 4)
        x = x.reshape(batch, chans, T, Fd)
        if T != original_T:
            x = x[:, :, :original_T, :]
        return self.dropout2(x)

    def _ff_block(self, x):
        B, C, T, Fd = x.shape
        x_reshaped = x.permute(0, 2, 1, 3).reshape(B * T, C, Fd)
        x_ff = self.fc2(self.dropout(F.gelu(self.fc1(x_reshaped))))
        x_ff = x_ff.reshape(B, T, C, Fd).permute(0, 2, 1, 3)
        return self.dropout3(x_ff)


class NaiveCSBrain(nn.Module):
    """Backbone: sorted channels, patch embedding, then per layer temporal conv, region conv
    (both shared by all layers) and the encoder layer. Returns ``(B, C, P, D)`` sorted."""

    def __init__(self, order, sorted_regions, cfg) -> None:
        super().__init__()
        self.config = cfg
        self.patch_embedding = NaivePatchEmbedding(cfg)
        self.temporal_conv = NaiveTemporalConv(cfg)
        self.region_conv = NaiveRegionConv(cfg)
        self.layers = nn.ModuleList(NaiveEncoderLayer(cfg) for _ in range(cfg.n_layers))
        self.sorted_indices = list(order)
        regions = list(sorted_regions)
        self.area_config = {}      # region -> (slice, n_electrodes), as the released area_config
        region_indices = {}
        for r in sorted(set(regions)):
            idx = [i for i, v in enumerate(regions) if v == r]
            self.area_config[r] = (slice(idx[0], idx[-1] + 1), len(idx))
            region_indices[r] = idx
        for layer in self.layers:
            layer.set_regions(region_indices, len(regions))

    def forward(self, x, mask=None):
        x = x[:, self.sorted_indices, :, :]
        h = self.patch_embedding(x, mask)
        for layer in self.layers:
            h = self.temporal_conv(h) + h
            h = self.region_conv(h, self.area_config) + h
            h = layer(h)
        return h


class NaiveCSBrainForPretraining(nn.Module):
    def __init__(self, order, sorted_regions, cfg) -> None:
        super().__init__()
        self.backbone = NaiveCSBrain(order, sorted_regions, cfg)
        self.head = nn.Linear(cfg.d_model, cfg.patch_size)

    def forward(self, x, mask=None):
        return self.head(self.backbone(x, mask))


# ----- adapter: the fast model's state dict -> the naive one -----
_ATTN = {"window_attn": "inter_window_attn", "region_attn": "inter_region_attn"}


def fast_to_naive_key(key: str) -> str:
    """Rename one fast-model key to the naive (released-structured) one."""
    for ours, theirs in _ATTN.items():
        key = key.replace(f"{ours}.qkv.weight", f"{theirs}.in_proj_weight")
        key = key.replace(f"{ours}.qkv.bias", f"{theirs}.in_proj_bias")
        key = key.replace(f"{ours}.proj.", f"{theirs}.out_proj.")
    return key.replace("region_attn.region_fc.", "global_fc.")


def naive_from_fast(model: nn.Module) -> nn.Module:
    """A naive model (backbone or pretraining wrapper) with ``model``'s weights and montage."""
    backbone = getattr(model, "backbone", model)
    args = (backbone.montage.order, backbone.montage.sorted_regions, backbone.config)
    naive = NaiveCSBrainForPretraining(*args) if hasattr(model, "head") else NaiveCSBrain(*args)
    state = {fast_to_naive_key(k): v for k, v in model.state_dict().items()}
    naive.load_state_dict(state, strict=True)
    naive.to(next(model.parameters()).device)
    return naive.train(model.training)


__all__ = ["NaiveCSBrain", "NaiveCSBrainForPretraining", "naive_from_fast", "fast_to_naive_key"]
