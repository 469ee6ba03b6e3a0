"""Summaries of checkpoints (ours or released) for ``csbrain info``, and conversion."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from csbrain.montage import REGION_NAMES


def load_any(path: str | Path, *, preset: str | None = None, channels: list[str] | None = None,
             weights_only: bool = True):
    """Load a model from our folder format or a released ``.pth`` (backbone + head if present).

    A released file with a reconstruction head loads as :class:`CSBrainForPretraining`,
    otherwise as :class:`CSBrain`.
    """
    from csbrain.models import CSBrain, CSBrainForPretraining, load_model
    from csbrain.models.released import HEAD_PREFIX, read_checkpoint

    path = Path(path)
    if path.is_dir():
        model = load_model(path)
        if preset is not None or channels is not None:
            model_backbone = getattr(model, "backbone", model)
            model_backbone.set_montage(preset if preset is not None else channels)
        return model
    state = read_checkpoint(path, weights_only=weights_only)
    cls = CSBrainForPretraining if any(k.startswith(HEAD_PREFIX) for k in state) else CSBrain
    return cls.from_released(path, preset=preset, channels=channels, weights_only=weights_only)


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
