"""Summaries of checkpoints (ours or released) for ``csbrain info``, and conversion."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from csbrain.montage import REGION_NAMES


def load_any(path: str | Path, *, preset: str | None = None, channels: list[str] | None = None,
             weights_only: bool = True):
    """:func:`csbrain.models.load_model` with the montage given as the CLI does: a ``preset``
    name or a list of ``channels`` (at most one)."""
    from csbrain.models.hub import load_model

    if preset is not None and channels is not None:
        raise ValueError("pass either preset= or channels=, not both")
    return load_model(path, montage=preset if preset is not None else channels,
                      weights_only=weights_only)


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


def convert_released(src: str | Path, dest: str | Path, *, preset: str | None = None,
                     channels: list[str] | None = None, weights_only: bool = True) -> Path:
    """Convert a released ``.pth`` into our folder format (``config.json`` + safetensors)."""
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"destination {str(dest)!r} exists and is not empty; choose a new folder")
    if Path(src).is_dir():
        raise ValueError(f"{str(src)!r} is already a csbrain model folder; nothing to convert")
    model = load_any(src, preset=preset, channels=channels, weights_only=weights_only)
    return model.save_pretrained(dest, extra={"converted_from": Path(src).name})
