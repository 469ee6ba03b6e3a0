"""The authors' released checkpoints: reading, key mapping, strict loading.

The released state dict (``CSBrain.pth``; downstream checkpoints saved from ``nn.DataParallel``
with ``module.`` / ``backbone.`` prefixes) names modules differently from this package and
stores per-region convolutions separately. :func:`released_key_map` is the one table of that
correspondence; :func:`convert_released_state_dict` applies it strictly: every expected key must
be present, no unknown key is ignored silently, and every shape must match.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from csbrain.config import CSBrainConfig
from csbrain.montage import N_REGIONS

logger = logging.getLogger(__name__)

#: Prefixes added by wrappers around the released model (DataParallel, fine-tuning models,
#: torch.compile); stripped before mapping.
WRAPPER_PREFIXES = ("module.", "backbone.", "_orig_mod.")
#: Released reconstruction head (pretraining) and downstream classifier prefixes.
HEAD_PREFIX = "proj_out."
CLASSIFIER_PREFIX = "classifier."

_PE = "patch_embedding."
_LAYER = [  # (ours inside layers.{l}., released inside encoder.layers.{l}.)
    *((f"{ours}.{p}", f"{theirs}.{p}") for ours, theirs in (
        ("norm1", "norm1"), ("norm2", "norm2"), ("norm3", "norm3"),
        ("window_attn.proj", "inter_window_attn.out_proj"),
        ("region_attn.proj", "inter_region_attn.out_proj"),
        ("region_attn.region_fc", "global_fc"), ("fc1", "linear1"), ("fc2", "linear2"))
      for p in ("weight", "bias")),
    *((f"{a}_attn.qkv.{p}", f"inter_{a}_attn.in_proj_{p}")
      for a in ("window", "region") for p in ("weight", "bias")),
]

def released_key_map(cfg: CSBrainConfig) -> list[tuple[str, tuple[str, ...], str]]:
    """The backbone's key correspondence.

    Returns
    -------
    list of (our_key, released_keys, op)
        ``op`` is ``"copy"``, ``"squeeze"`` (drop the released trailing ``1`` of a (k, 1)
        conv kernel) or ``"stack"`` (stack the 5 per-region tensors, squeezing conv kernels).
    """
    rows: list[tuple[str, tuple[str, ...], str]] = []
    for i in (0, 1, 3, 4, 6, 7):
        for p in ("weight", "bias"):
            rows.append((f"{_PE}proj_in.{i}.{p}", (f"{_PE}proj_in.{i}.{p}",), "copy"))
    for p in ("weight", "bias"):
        rows.append((f"{_PE}spectral_proj.{p}", (f"{_PE}spectral_proj.0.{p}",), "copy"))
        rows.append((f"{_PE}pos_conv.{p}", (f"{_PE}positional_encoding.0.{p}",), "copy"))
    rows.append((f"{_PE}mask_token", (f"{_PE}mask_encoding",), "copy"))
    for i in range(len(cfg.kernel_sizes)):
        for p, how in (("weight", "squeeze"), ("bias", "copy")):
            rows.append((f"temporal_conv.convs.{i}.{p}", (f"TemEmbedEEGLayer.convs.{i}.{p}",), how))
        for p, ours in (("weight", "weights"), ("bias", "biases")):
            src = tuple(f"BrainEmbedEEGLayer.region_blocks.region_{r}.{i}.{p}"
                        for r in range(N_REGIONS))
            rows.append((f"region_conv.{ours}.{i}", src, "stack"))
    for layer in range(cfg.n_layers):
        for ours, theirs in _LAYER:
            rows.append((f"layers.{layer}.{ours}", (f"encoder.layers.{layer}.{theirs}",), "copy"))
    return rows


def strip_prefixes(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Remove wrapper prefixes (``module.``, ``backbone.``, ``_orig_mod.``) from every key."""
    prefixes = re.compile("^(?:" + "|".join(map(re.escape, WRAPPER_PREFIXES)) + ")+")
    return {prefixes.sub("", key): value for key, value in state_dict.items()}


def read_checkpoint(path: str | Path, *, weights_only: bool = True,
                    map_location: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Read a released ``.pth`` state dict on CPU (by default) with prefixes stripped.

    Accepts a plain state dict or a dict holding one under ``state_dict``, ``model`` or
    ``model_state_dict``. ``weights_only=True`` refuses arbitrary pickles.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist or is not a file")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):
        # torch.save writes a zip archive (or, before torch 1.6, a pickle): anything else would
        # reach the unpickler and fail with its internals ("KeyError: 101").
        raise ValueError(f"cannot read checkpoint {str(path)!r}: it is not a PyTorch checkpoint "
                         "(neither a zip archive nor a pickle); give a model folder or a "
                         "released .pth")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=weights_only)
    except Exception as err:  # torch raises UnpicklingError / RuntimeError subclasses
        hint = (" It may be a full pickle of a model: if you trust its source, pass "
                "weights_only=False." if weights_only else "")
        raise ValueError(f"cannot read checkpoint {str(path)!r}: {err.__class__.__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else ''}.{hint}") from err
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model", "model_state_dict"):
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"checkpoint {str(path)!r} does not hold a state dict of tensors "
                         f"(got {type(obj).__name__})")
    return strip_prefixes(obj)


def config_from_released(state_dict: Mapping[str, torch.Tensor], **overrides: Any) -> CSBrainConfig:
    """Infer the architecture of a (prefix-stripped) released state dict.

    ``n_heads`` cannot be read from weights: it defaults to the released 8.
    """
    sd = state_dict
    try:
        layers = {int(m.group(1)) for k in sd if (m := re.match(r"encoder\.layers\.(\d+)\.", k))}
        n_convs = sum(bool(re.fullmatch(r"TemEmbedEEGLayer\.convs\.\d+\.weight", k)) for k in sd)
        found = dict(
            patch_size=int(sd[f"{_PE}mask_encoding"].shape[0]),
            d_model=int(sd[f"{_PE}spectral_proj.0.weight"].shape[0]),
            n_layers=max(layers) + 1,
            dim_feedforward=int(sd["encoder.layers.0.linear1.weight"].shape[0]),
            kernel_sizes=tuple(int(sd[f"TemEmbedEEGLayer.convs.{i}.weight"].shape[2])
                               for i in range(n_convs)),
            pos_kernel=tuple(int(s) for s in sd[f"{_PE}positional_encoding.0.weight"].shape[2:]),
            temporal_mode="released",
        )
    except (KeyError, ValueError) as err:
        raise ValueError("the state dict is not a released CSBrain checkpoint: cannot find "
                         f"{err} (expected keys such as 'patch_embedding.mask_encoding', "
                         "'encoder.layers.0.linear1.weight')") from None
    for key, value in overrides.items():
        if value is not None:
            found[key] = value
    return CSBrainConfig(**found)


def _names(keys: list[str], limit: int = 12) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def convert_released_state_dict(state_dict: Mapping[str, torch.Tensor],
                                target: Mapping[str, torch.Tensor],
                                cfg: CSBrainConfig
                                ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Map a prefix-stripped released state dict onto a backbone's keys, strictly.

    Parameters
    ----------
    state_dict : mapping
        Released keys (after :func:`strip_prefixes`).
    target : mapping
        The backbone's own ``state_dict()`` (for shapes).
    cfg : CSBrainConfig
        The backbone's configuration.

    Returns
    -------
    backbone : dict
        Our keys -> tensors, ready for ``load_state_dict(strict=True)``.
    heads : dict
        Released head tensors (``proj_out.*``, ``classifier.*``) with the prefix kept.

    Raises
    ------
    ValueError
        Naming every missing key, unexpected key and shape mismatch.
    """
    rows = released_key_map(cfg)
    expected = {k for _, src, _ in rows for k in src}
    heads = {k: v for k, v in state_dict.items() if k.startswith((HEAD_PREFIX, CLASSIFIER_PREFIX))}
    given = set(state_dict) - set(heads)
    missing, unexpected = sorted(expected - given), sorted(given - expected)
    problems = []
    found_layers = {int(m.group(1)) for k in given
                    if (m := re.match(r"encoder\.layers\.(\d+)\.", k))}
    if found_layers and len(found_layers) != cfg.n_layers:
        problems.append(f"the checkpoint has {len(found_layers)} layers, the model {cfg.n_layers}")
    if missing:
        problems.append(f"missing keys: {_names(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_names(unexpected)}")
    out: dict[str, torch.Tensor] = {}
    if not missing:
        for ours, src, op in rows:
            tensors = [state_dict[k] for k in src]
            if op in ("squeeze", "stack"):  # released conv kernels are (dk, D, k, 1)
                tensors = [t.squeeze(-1) if t.dim() == 4 else t for t in tensors]
            value = torch.stack(tensors) if op == "stack" else tensors[0]
            if ours not in target:
                problems.append(f"key {ours!r} (from {src[0]!r}) has no place in the model")
            elif value.shape != target[ours].shape:
                problems.append(f"shape mismatch for {src[0]!r}: checkpoint {tuple(value.shape)}, "
                                f"model {tuple(target[ours].shape)} ({ours})")
            else:
                out[ours] = value.to(dtype=target[ours].dtype)
    if problems:
        raise ValueError("released checkpoint does not match the model architecture "
                         f"(n_layers={cfg.n_layers}, d_model={cfg.d_model}, "
                         f"dim_feedforward={cfg.dim_feedforward}, "
                         f"kernel_sizes={cfg.kernel_sizes}): "
                         + "; ".join(problems[:20]))
    left = sorted(set(target) - set(out))
    if left:
        raise ValueError(f"released checkpoint leaves model keys unset: {_names(left)}")
    return out, heads


class ReleasedMixin:
    """``from_released``: build a model and load a released state dict into it, strictly."""

    def _load_released_heads(self, heads: dict[str, torch.Tensor], what: str) -> None:
        if heads:
            logger.info("%s: dropping released head weights %s", what, sorted(heads))

    @classmethod
    def from_released(cls, path: str | Path | Mapping[str, torch.Tensor], *,
                      preset: str | None = None, channels: list[str] | None = None,
                      n_layers: int | None = None, weights_only: bool = True,
                      n_heads: int | None = None, **task_kwargs: Any):
        """Load an authors' checkpoint (``.pth``) on CPU, in eval mode.

        Parameters
        ----------
        path : str, Path or mapping
            The released state dict (``module.`` / ``backbone.`` prefixes are stripped), or its
            tensors as read by :func:`read_checkpoint`.
        preset : str, optional
            A released montage name (:func:`csbrain.montage.list_presets`).
        channels : list of str, optional
            Channel names resolved by the montage contract. Default (neither given): the
            pretraining montage ``TUEG``.
        n_layers : int, optional
            Expected number of layers; default: read from the checkpoint.
        weights_only : bool
            Refuse arbitrary pickles (default).
        **task_kwargs
            Arguments of the task wrapper (e.g. ``n_outputs``, ``n_times``).
        """
        if preset is not None and channels is not None:
            raise ValueError("pass either preset= or channels=, not both")
        montage = preset if preset is not None else channels
        if montage is None:
            logger.info("no montage given: using the pretraining montage 'TUEG'")
            montage = "TUEG"
        read = not isinstance(path, Mapping)
        state = read_checkpoint(path, weights_only=weights_only) if read else strip_prefixes(path)
        cfg = config_from_released(state, n_layers=n_layers, n_heads=n_heads)
        model = cls(montage, cfg, **task_kwargs)
        backbone = getattr(model, "backbone", model)
        weights, heads = convert_released_state_dict(state, backbone.state_dict(), cfg)
        backbone.load_state_dict(weights, strict=True)
        model._load_released_heads(heads, str(path) if read else "released state dict")
        return model.eval()
