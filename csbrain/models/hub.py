"""Our checkpoint format: a folder with ``config.json`` + ``model.safetensors`` (the Hugging
Face layout), so ``from_pretrained(folder)`` works offline. ``config.json`` records the
architecture, the model config (including the temporal-convolution mode), the montage, the task
arguments and any extra metadata (e.g. the preprocessing config a run used)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from csbrain._io import atomic_write_json

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT = "csbrain"

#: Architecture name -> class; filled by :func:`register`.
ARCHITECTURES: dict[str, type] = {}


def register(cls: type) -> type:
    """Class decorator: make ``cls`` loadable by :func:`load_model`."""
    ARCHITECTURES[cls.__name__] = cls
    return cls


def read_model_config(path: str | Path) -> dict[str, Any]:
    """Read and check ``config.json`` of a saved model folder."""
    folder = Path(path)
    cfg_path = folder / CONFIG_NAME
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{str(folder)!r} is not a csbrain model folder: no {CONFIG_NAME} "
                                f"(expected {CONFIG_NAME} + {WEIGHTS_NAME}; convert a released "
                                "checkpoint with `csbrain convert`)")
    meta = json.loads(cfg_path.read_text())
    if meta.get("format") != FORMAT or "architecture" not in meta:
        raise ValueError(f"{str(cfg_path)!r} is not a csbrain config "
                         f"(format={meta.get('format')!r})")
    if meta["architecture"] not in ARCHITECTURES:
        raise ValueError(f"{str(cfg_path)!r}: architecture={meta['architecture']!r} is unknown; "
                         f"expected one of {sorted(ARCHITECTURES)}")
    return meta


class HubMixin:
    """``save_pretrained`` / ``from_pretrained`` for csbrain models.

    Subclasses implement ``_task_kwargs()`` (constructor arguments besides montage and config)
    and expose ``backbone`` (or are the backbone).
    """

    def _task_kwargs(self) -> dict[str, Any]:
        return {}

    def save_pretrained(self, path: str | Path, *, extra: dict[str, Any] | None = None) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into folder ``path`` (created).

        Each file is written atomically; the weights first, so a config never points to
        missing weights.
        """
        from csbrain import __version__

        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        backbone = getattr(self, "backbone", self)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        tmp = folder / f".{WEIGHTS_NAME}.tmp"
        save_file(state, str(tmp), metadata={"format": "pt"})
        os.replace(tmp, folder / WEIGHTS_NAME)
        meta = {"format": FORMAT, "csbrain_version": __version__,
                "architecture": type(self).__name__,
                "config": backbone.config.to_dict(), "montage": backbone.montage.to_dict(),
                "task": self._task_kwargs(), "extra": extra or {}}
        atomic_write_json(folder / CONFIG_NAME, meta)
        logger.info("saved %s to %s", type(self).__name__, folder)
        return folder

    @classmethod
    def from_pretrained(cls, path: str | Path, *, montage: Any = None,
                        map_location: str | torch.device = "cpu", **task_overrides: Any):
        """Load a model saved by :meth:`save_pretrained`, strictly.

        Loading a task model's folder into a different class keeps only the backbone (the head
        is dropped, timm style); every backbone key must match. ``montage`` overrides the saved
        one (weights do not depend on it).
        """
        from csbrain.config import CSBrainConfig
        from csbrain.montage import Montage

        folder = Path(path)
        meta = read_model_config(folder)
        weights = folder / WEIGHTS_NAME
        if not weights.is_file():
            raise FileNotFoundError(f"{str(folder)!r} has {CONFIG_NAME} but no {WEIGHTS_NAME}")
        config = CSBrainConfig.from_dict(meta["config"])
        mont = montage if montage is not None else Montage.from_dict(meta["montage"])
        state = load_file(str(weights), device=str(map_location))
        same = meta["architecture"] == cls.__name__
        kwargs = {**(meta["task"] if same else {}), **task_overrides}
        model = cls(mont, config, **kwargs)
        if same and not task_overrides:
            load_strict(model, state, what=str(weights))
        else:
            load_backbone(model, state, what=str(weights))
        model.eval()
        return model


def load_strict(model: torch.nn.Module, state: dict[str, torch.Tensor], *, what: str) -> None:
    """``load_state_dict(strict=True)`` with missing/unexpected keys and shapes named."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: file {tuple(state[k].shape)}, model {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(state)) if state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        raise ValueError(f"{what} does not match {type(model).__name__}: "
                         f"missing keys {missing[:10]}"
                         f"{'...' if len(missing) > 10 else ''}; unexpected keys {unexpected[:10]}"
                         f"{'...' if len(unexpected) > 10 else ''}; shape mismatches {shapes[:10]}")
    model.load_state_dict(state, strict=True)


def load_backbone(model: torch.nn.Module, state: dict[str, torch.Tensor], *, what: str) -> None:
    """Load only the backbone part of ``state`` into ``model`` (strict on the backbone)."""
    backbone = getattr(model, "backbone", model)
    sub = dict(state)                   # a backbone's own state, or a task model's backbone.*
    if any(k.startswith("backbone.") for k in state):
        sub = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    dropped = sorted(set(state) - {f"backbone.{k}" for k in sub} - set(sub))
    if dropped:
        logger.info("dropping head weights of %s: %s", what, dropped)
    load_strict(backbone, sub, what=what)


def load_model(path: str | Path, *, montage: Any = None, weights_only: bool = True,
               **kwargs: Any):
    """Load any csbrain model: the one rule for "model folder or released ``.pth``".

    ``path``: a folder of :meth:`HubMixin.save_pretrained` (the class read from its
    ``config.json``), or any other file: an authors' checkpoint, read once, loaded as
    ``CSBrainForPretraining`` if it holds a reconstruction head, else ``CSBrain``. ``montage``
    overrides a folder's montage, or chooses a released file's (default ``TUEG``); ``kwargs``
    go to ``from_pretrained`` (``map_location``, task arguments) or ``from_released``.
    """
    from csbrain.models.released import HEAD_PREFIX, read_checkpoint

    path = Path(path)
    if path.is_dir():
        meta = read_model_config(path)
        return ARCHITECTURES[meta["architecture"]].from_pretrained(path, montage=montage, **kwargs)
    if not path.exists():
        raise FileNotFoundError(f"{str(path)!r} does not exist; expected a csbrain model folder "
                                f"({CONFIG_NAME} + {WEIGHTS_NAME}) or a released .pth checkpoint")
    state = read_checkpoint(path, weights_only=weights_only)
    name = "CSBrainForPretraining" if any(k.startswith(HEAD_PREFIX) for k in state) else "CSBrain"
    where = {"preset": montage} if isinstance(montage, str) else {"channels": montage}
    return ARCHITECTURES[name].from_released(state, **where, **kwargs)
