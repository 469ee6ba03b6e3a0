"""The models a run trains: the pretraining model, and the classifier / regressor of
fine-tuning with its initial backbone (``init``: a model or run folder, or a released ``.pth``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from csbrain.configio import to_dict
from csbrain.engine.rundata import RunData
from csbrain.models import (
    CSBrainForClassification,
    CSBrainForPretraining,
    CSBrainForRegression,
    CSBrainForSequenceClassification,
    load_model,
)
from csbrain.models.hub import load_strict
from csbrain.train.config import FinetuneConfig, PretrainConfig

logger = logging.getLogger(__name__)

__all__ = ["INIT_OVERRIDABLE", "load_init_backbone", "build_pretraining_model",
           "build_classifier"]

#: ``model.*`` keys that may differ from an ``init`` checkpoint's architecture (weights unchanged).
INIT_OVERRIDABLE = ("dropout",)


def load_init_backbone(path: str | Path) -> tuple[Any, dict[str, torch.Tensor]]:
    """Backbone config and weights from a model / run folder or a released ``.pth``.

    Returns
    -------
    config : CSBrainConfig
    state : dict of str to Tensor
        Backbone state dict (keys without ``backbone.``).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"--init {str(path)!r} does not exist; expected a csbrain model "
                                f"or run folder, or a released .pth checkpoint")
    model = load_model(path)  # the one rule: a folder is ours, any other file a released .pth
    backbone = getattr(model, "backbone", model)
    return backbone.config, backbone.state_dict()


def build_pretraining_model(rd: RunData, cfg: PretrainConfig) -> CSBrainForPretraining:
    """A :class:`CSBrainForPretraining` on the data's montage.

    A trainable mask token if ``mask_token="learned"``; a spectral head for the spectral
    targets (with ``target="spectral"`` the waveform head is frozen: it takes no part in the
    loss); head weights and biases multiplied by ``head_init_scale``.
    """
    spectral = cfg.target in ("spectral", "waveform+spectral")
    model = CSBrainForPretraining(rd.montage, cfg.model_config, spectral_head=spectral)
    if cfg.mask_token == "learned":
        model.backbone.patch_embedding.mask_token.requires_grad_(True)
    heads = [h for h in (model.head, model.spectral_head) if h is not None]
    if cfg.head_init_scale != 1.0:
        with torch.no_grad():
            for p in (p for h in heads for p in h.parameters()):
                p.mul_(cfg.head_init_scale)
    if cfg.target == "spectral":
        model.head.requires_grad_(False)
    return model


def build_classifier(rd: RunData, cfg: FinetuneConfig, task: str, n_outputs: int
                     ) -> torch.nn.Module:
    """The task model of a fine-tuning run, its backbone loaded from ``cfg.init`` if set: a
    classifier / regressor, or a sequence model when ``cfg.sequence_length`` is set.

    With ``init`` the architecture is the checkpoint's: ``model.*`` keys other than
    :data:`INIT_OVERRIDABLE` that differ from it raise ``ValueError``. ``method="probe"``
    freezes the backbone (LoRA wrapping is :func:`csbrain.train.adapt.apply_lora`).
    """
    model_cfg = cfg.model_config
    state = None
    if cfg.init:
        init_cfg, state = load_init_backbone(cfg.init)
        set_fields = {k: getattr(cfg.model_config, k) for k, v in to_dict(cfg.model).items()
                      if k != "preset" and v is not None}
        clash = {k: v for k, v in set_fields.items()
                 if k not in INIT_OVERRIDABLE and v != getattr(init_cfg, k)}
        if clash:
            raise ValueError(f"model.{', model.'.join(f'{k}={v!r}' for k, v in clash.items())} "
                             f"conflict with the --init checkpoint {cfg.init} ("
                             f"{', '.join(f'{k}={getattr(init_cfg, k)!r}' for k in clash)}); "
                             f"with --init the architecture is the checkpoint's: only "
                             f"{', '.join('model.' + k for k in INIT_OVERRIDABLE)} may be set")
        model_cfg = init_cfg.replace(**set_fields)
        logger.info("initial backbone from %s (%s)", cfg.init, model_cfg)
    n_times = rd.n_patches * model_cfg.patch_size
    if cfg.sequence_length:
        model = CSBrainForSequenceClassification(
            rd.montage, model_cfg, n_outputs=n_outputs, n_times=n_times,
            epoch_features=cfg.head, head_dropout=cfg.head_dropout)
    else:
        cls = CSBrainForRegression if task == "regression" else CSBrainForClassification
        model = cls(rd.montage, model_cfg, n_outputs=n_outputs, n_times=n_times,
                    head=cfg.head, head_dropout=cfg.head_dropout)
    if state is not None:
        load_strict(model.backbone, state, what=f"--init {cfg.init}")
    if cfg.method == "probe":  # freeze_backbone=True is its alias
        model.backbone.requires_grad_(False)
    return model
