"""Summaries of checkpoints (ours or released) for ``csbrain info``, and conversion."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from csbrain.montage import REGION_NAMES

logger = logging.getLogger(__name__)

#: Windows and patches per window of the parity check of :func:`convert_released`.
PARITY_WINDOWS, PARITY_PATCHES = 2, 2


def summarize(model: Any) -> dict[str, Any]:
    """JSON-able summary: architecture, config, parameter counts, montage and regions."""
    backbone = getattr(model, "backbone", model)
    mont = backbone.montage
    regions = {REGION_NAMES[r]: [mont.channels[i] for i in mont.order if mont.regions[i] == r]
               for r in range(len(REGION_NAMES))}
    return {
        "architecture": type(model).__name__,
        "config": backbone.config.to_dict(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "backbone_parameters": sum(p.numel() for p in backbone.parameters()),
        "montage": {"preset": mont.preset, "n_chans": mont.n_chans, "channels": list(mont.channels),
                    "sorted_indices": list(mont.order)},
        "regions": {k: v for k, v in regions.items() if v},
    }


def convert_released(src: str | Path, dest: str | Path, *, montage: str | list[str] | None = None,
                     weights_only: bool = True) -> Path:
    """Convert a released ``.pth`` into our folder format (``config.json`` + safetensors).

    ``montage``: a preset name or a list of channel names (default ``TUEG``), as
    :func:`csbrain.models.load_model` takes it. ``config.json`` ``extra`` and the model card
    (``README.md``) record the source file, its sha256 and the measured parity of the folder
    with the source (:func:`max_abs_diff`).
    """
    from csbrain.models.hub import load_model

    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"destination {str(dest)!r} exists and is not empty; "
                              "choose a new folder")
    if Path(src).is_dir():
        raise ValueError(f"{str(src)!r} is already a csbrain model folder; nothing to convert")
    from csbrain.models.card import sha256_of

    model = load_model(src, montage=montage, weights_only=weights_only)
    extra = {"converted_from": Path(src).name, "source_sha256": sha256_of(src)}
    model.save_pretrained(dest, extra=extra, model_card=False)
    diff = max_abs_diff(model, load_model(dest))
    extra["parity"] = {"max_abs_diff": diff, "what": f"this folder's model vs the source "
                       f"checkpoint loaded directly, {PARITY_WINDOWS} random windows of "
                       f"{PARITY_PATCHES} s, eval mode"}
    model.save_pretrained(dest, extra=extra)     # the config and card record the parity
    logger.info("converted %s -> %s (max |diff| %.3g)", src, dest, diff)
    return dest


def max_abs_diff(a: Any, b: Any, *, seed: int = 0) -> float:
    """Largest absolute difference of two models' outputs on seeded random raw windows.

    Both read the same montage; inputs ``(PARITY_WINDOWS, C, PARITY_PATCHES * 200)``.
    """
    import torch

    backbone = getattr(a, "backbone", a)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(PARITY_WINDOWS, backbone.n_chans,
                    PARITY_PATCHES * backbone.config.patch_size, generator=gen)
    a.eval(), b.eval()
    with torch.no_grad():
        return float((a(x) - b(x)).abs().max())
