"""Summaries of checkpoints (ours or released) for ``csbrain info``, and conversion."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from csbrain.montage import REGION_NAMES


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
    :func:`csbrain.models.load_model` takes it.
    """
    from csbrain.models.hub import load_model

    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"destination {str(dest)!r} exists and is not empty; "
                              "choose a new folder")
    if Path(src).is_dir():
        raise ValueError(f"{str(src)!r} is already a csbrain model folder; nothing to convert")
    model = load_model(src, montage=montage, weights_only=weights_only)
    return model.save_pretrained(dest, extra={"converted_from": Path(src).name})
