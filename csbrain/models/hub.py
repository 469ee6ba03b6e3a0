"""Our checkpoint format: a folder with ``config.json`` + ``model.safetensors`` (the Hugging
Face layout) and a model card ``README.md``, so ``from_pretrained(folder)`` works offline and
``from_pretrained("org/name")`` through the hub cache (:mod:`csbrain.models.hfhub`).
``config.json`` records the architecture, the model config (including the temporal-convolution
mode), the montage, the task arguments and any extra metadata (e.g. the preprocessing config a
run used)."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
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
    """``save_pretrained`` / ``from_pretrained`` / ``push_to_hub`` and ``get_config`` /
    ``from_config`` for csbrain models (the braindecode / Hugging Face names).

    Subclasses implement ``_task_kwargs()`` (constructor arguments besides montage and config)
    and expose ``backbone`` (or are the backbone). A hub id (``"org/name"``) is resolved by
    ``huggingface_hub`` (:mod:`csbrain.models.hfhub`): its cache, ``revision``,
    ``local_files_only`` and offline mode (``HF_HUB_OFFLINE=1``) apply.
    """

    def _task_kwargs(self) -> dict[str, Any]:
        return {}

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, JSON-able: ``montage``, ``config`` and the task's.

        Returns
        -------
        dict
            ``{"montage": Montage.to_dict(), "config": CSBrainConfig.to_dict(), **task}``;
            :meth:`from_config` rebuilds the model (new weights).
        """
        backbone = getattr(self, "backbone", self)
        return {"montage": backbone.montage.to_dict(), "config": backbone.config.to_dict(),
                **self._task_kwargs()}

    @classmethod
    def from_config(cls, config: dict[str, Any]):
        """A new model (fresh weights) from :meth:`get_config` output."""
        from csbrain.config import CSBrainConfig
        from csbrain.montage import Montage

        rest = dict(config)
        montage, cfg = rest.pop("montage", None), rest.pop("config", None)
        if montage is None or cfg is None:
            raise ValueError(f"config has keys {sorted(config)}; expected 'montage' and "
                             f"'config' (the output of get_config())")
        return cls(Montage.from_dict(montage), CSBrainConfig.from_dict(cfg), **rest)

    def save_pretrained(self, path: str | Path, *, extra: dict[str, Any] | None = None,
                        model_card: bool = True, metrics: dict[str, Any] | None = None) -> Path:
        """Write ``config.json``, ``model.safetensors`` (and ``README.md``) into folder ``path``.

        Each file is written atomically; the weights first, so a config never points to
        missing weights. ``model_card``: also write the model card (:mod:`csbrain.models.card`,
        needs ``huggingface_hub``; skipped with a log line without it), with ``metrics``.
        """
        from csbrain import __version__

        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        tmp = folder / f".{WEIGHTS_NAME}.tmp"
        save_file(state, str(tmp), metadata={"format": "pt"})
        os.replace(tmp, folder / WEIGHTS_NAME)
        task = self.get_config()
        config, montage = task.pop("config"), task.pop("montage")
        meta = {"format": FORMAT, "csbrain_version": __version__,
                "architecture": type(self).__name__, "config": config, "montage": montage,
                "task": task, "extra": extra or {}}
        atomic_write_json(folder / CONFIG_NAME, meta)
        if model_card:
            from csbrain.models.card import write_model_card

            write_model_card(folder, metrics=metrics)
        logger.info("saved %s to %s", type(self).__name__, folder)
        return folder

    @classmethod
    def from_pretrained(cls, path: str | Path, *, revision: str | None = None,
                        local_files_only: bool = False, cache_dir: str | Path | None = None,
                        token: str | bool | None = None, force_download: bool = False,
                        montage: Any = None, map_location: str | torch.device = "cpu",
                        **task_overrides: Any):
        """Load a model saved by :meth:`save_pretrained` (a folder or a hub id), strictly.

        Parameters
        ----------
        path : str | Path
            A model folder, or a Hugging Face hub id ``"org/name"`` (downloaded into, or read
            from, the hub cache by ``huggingface_hub``).
        revision, local_files_only, cache_dir, token, force_download
            As for ``huggingface_hub.hf_hub_download`` (hub ids only). With
            ``HF_HUB_OFFLINE=1`` or ``local_files_only=True`` nothing is downloaded: a model
            missing from the cache raises ``FileNotFoundError`` naming the cache.
        montage : optional
            Overrides the saved montage (weights do not depend on it).
        map_location : str | torch.device
        **task_overrides
            Task arguments that differ from the saved ones (e.g. ``n_outputs``): only the
            backbone is loaded and the head starts fresh (braindecode's head reset).

        Loading a task model's folder into a different class keeps only the backbone (the head
        is dropped, timm style); every backbone key must match.
        """
        from csbrain.config import CSBrainConfig
        from csbrain.models.hfhub import resolve_pretrained
        from csbrain.montage import Montage

        folder = resolve_pretrained(path, revision=revision, local_files_only=local_files_only,
                                    cache_dir=cache_dir, token=token,
                                    force_download=force_download)
        meta = read_model_config(folder)
        weights = folder / WEIGHTS_NAME
        if not weights.is_file():
            raise FileNotFoundError(f"{str(folder)!r} has {CONFIG_NAME} but no {WEIGHTS_NAME}")
        config = CSBrainConfig.from_dict(meta["config"])
        mont = montage if montage is not None else Montage.from_dict(meta["montage"])
        try:
            state = load_file(str(weights), device=str(map_location))
        except SafetensorError as err:  # truncated or not a safetensors file
            raise ValueError(f"cannot read {str(weights)!r}: {err}; the weights file is damaged "
                             "or truncated: copy it again") from err
        same = meta["architecture"] == cls.__name__
        changed = {k: v for k, v in task_overrides.items()
                   if not same or meta["task"].get(k, object()) != v}
        if same and not changed:
            # Built on the meta device and handed the file's tensors (assign=True): no random
            # initialisation and no second copy of the weights (the released flatten head alone
            # is 2.7 GB in fp32). The montage layout, not in the file, is then rebuilt.
            with torch.device("meta"):
                model = cls(mont, config, **meta["task"])
            load_strict(model, state, what=str(weights), assign=True)
            backbone = getattr(model, "backbone", model)
            backbone.set_montage(backbone.montage)
            left = [n for n, t in [*model.named_parameters(), *model.named_buffers()]
                    if t.is_meta]
            if left:
                raise RuntimeError(f"{cls.__name__}: tensors left unloaded: {left[:10]}")
        else:
            model = cls(mont, config, **{**(meta["task"] if same else {}), **task_overrides})
            load_backbone(model, state, what=str(weights))
        model.eval()
        return model

    def push_to_hub(self, repo_id: str, *, commit_message: str = "Upload csbrain model",
                    private: bool | None = None, token: str | None = None,
                    revision: str | None = None, extra: dict[str, Any] | None = None,
                    metrics: dict[str, Any] | None = None) -> str:
        """Save this model with its model card and upload it to hub repository ``repo_id``.

        Returns
        -------
        str
            The URL of the commit (``huggingface_hub.HfApi.upload_folder``).
        """
        from csbrain.models.hfhub import push_folder

        with tempfile.TemporaryDirectory(prefix="csbrain-push-") as tmp:
            self.save_pretrained(tmp, extra=extra, metrics=metrics)
            return push_folder(tmp, repo_id, commit_message=commit_message, private=private,
                               token=token, revision=revision)


def load_strict(model: torch.nn.Module, state: dict[str, torch.Tensor], *, what: str,
                assign: bool = False) -> None:
    """``load_state_dict(strict=True)`` with missing/unexpected keys and shapes named;
    ``assign=True`` makes the file's tensors the model's own (a model built on ``meta``)."""
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
    model.load_state_dict(state, strict=True, assign=assign)


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
               revision: str | None = None, local_files_only: bool = False,
               cache_dir: str | Path | None = None, **kwargs: Any):
    """Load any csbrain model: the one rule for "model folder, hub id or released ``.pth``".

    ``path``: a folder of :meth:`HubMixin.save_pretrained` (the class read from its
    ``config.json``), a Hugging Face hub id ``"org/name"`` holding such a folder (resolved by
    ``huggingface_hub`` with ``revision``, ``local_files_only``, ``cache_dir``; see
    :func:`csbrain.models.hfhub.resolve_pretrained`), or any other file: an authors'
    checkpoint, read once, loaded as ``CSBrainForPretraining`` if it holds a reconstruction
    head, else ``CSBrain``. ``montage`` overrides a folder's montage, or chooses a released
    file's (default ``TUEG``); ``kwargs`` go to ``from_pretrained`` (``map_location``, task
    arguments) or ``from_released``.
    """
    from csbrain.models.hfhub import resolve_pretrained
    from csbrain.models.released import HEAD_PREFIX, read_checkpoint

    path = resolve_pretrained(path, revision=revision, local_files_only=local_files_only,
                              cache_dir=cache_dir)
    if path.is_dir():
        meta = read_model_config(path)
        return ARCHITECTURES[meta["architecture"]].from_pretrained(path, montage=montage, **kwargs)
    if not path.exists():
        raise FileNotFoundError(f"{str(path)!r} does not exist; expected a csbrain model folder "
                                f"({CONFIG_NAME} + {WEIGHTS_NAME}), a hub id 'org/name' or a "
                                f"released .pth checkpoint")
    state = read_checkpoint(path, weights_only=weights_only)
    name = "CSBrainForPretraining" if any(k.startswith(HEAD_PREFIX) for k in state) else "CSBrain"
    where = {"preset": montage} if isinstance(montage, str) else {"channels": montage}
    return ARCHITECTURES[name].from_released(state, **where, **kwargs)
