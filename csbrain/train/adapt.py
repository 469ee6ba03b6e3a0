"""Adaptation methods of fine-tuning (``FinetuneConfig.method``) that train by gradient:
``probe``, ``lp_ft`` and ``lora`` (``full`` is the model as built; ``linear`` is
:mod:`csbrain.train.linear`).

- ``probe``: the backbone is frozen (no gradient, eval mode); the head trains.
- ``lp_ft`` (Kumar et al. 2022): :class:`ProbeThenFinetune` freezes the backbone for the
  first ``probe_epochs`` epochs and then unfreezes it; the optimiser holds every parameter from
  the start, and the backbone's learning rate is 0 until the switch
  (:func:`csbrain.train.optim.cosine_with_warmup` ``backbone_start``). The phase is a function
  of the epoch, so a resumed run is in the same phase as the run it continues.
- ``lora`` (Hu et al. 2022) through ``peft``: :func:`apply_lora` wraps the target linear
  layers of every encoder layer (:data:`csbrain.train.config.LORA_TARGETS` by default) with
  low-rank adapters and trains them and the whole head (``modules_to_save``); :func:`save_lora`
  writes the adapters to ``adapter/`` and the merged plain model as the run's model, so
  :func:`csbrain.models.load_model` reads it without ``peft``. The fused CPU kernels
  (:mod:`csbrain.models.fused_cpu`) refuse wrapped linear layers: blocks with adapters run on
  the portable path, the others stay fused.
"""

from __future__ import annotations

import copy
import logging
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from csbrain.engine import checkpoint as ckpt
from csbrain.engine.distributed import unwrap
from csbrain.train.config import FinetuneConfig
from csbrain.train.objectives import Supervised

logger = logging.getLogger(__name__)

__all__ = ["ADAPTER_DIR", "ProbeThenFinetune", "lora_pattern", "apply_lora",
           "save_lora", "merge_lora"]

#: Folder of a LoRA run that holds the adapters (``peft`` format: adapter_config.json and
#: adapter_model.safetensors, with the trained head as a module to save).
ADAPTER_DIR = "adapter"


class ProbeThenFinetune(Supervised):
    """LP-FT: :class:`~csbrain.train.objectives.Supervised` with the backbone frozen (no
    gradient, eval mode) for epochs ``< probe_epochs`` and trained from then on.

    Parameters
    ----------
    task : str
    probe_epochs : int
        Epochs of probing.
    **kwargs
        Passed to :class:`~csbrain.train.objectives.Supervised`.
    """

    def __init__(self, task: str, *, probe_epochs: int, **kwargs: Any) -> None:
        super().__init__(task, freeze_backbone=True, **kwargs)
        self.probe_epochs = probe_epochs
        self._trainable: list[nn.Parameter] | None = None
        self._frozen: bool | None = None

    def set_epoch(self, model: nn.Module, epoch: int) -> bool:
        """Freeze (epoch < probe_epochs) or unfreeze the backbone of the (unwrapped) ``model``
        and set its train modes; return whether the trainable set changed.

        Only parameters trainable when first called (those the optimiser holds) are toggled.
        """
        backbone = unwrap(model).backbone
        if self._trainable is None:
            self._trainable = [p for p in backbone.parameters() if p.requires_grad]
        frozen = epoch < self.probe_epochs
        changed = frozen != self._frozen
        if changed:
            for p in self._trainable:
                p.requires_grad_(not frozen)
            if self._frozen is not None:
                logger.info("epoch %d: backbone %s", epoch, "frozen" if frozen else "unfrozen")
        self._frozen = self.freeze_backbone = frozen
        self.train_mode(model)
        return changed


def lora_pattern(targets: Sequence[str]) -> str:
    """``peft`` ``target_modules`` regular expression (full match) for module names
    ``backbone.layers.<i>.<target>`` of a task model."""
    names = "|".join(re.escape(t) for t in targets)
    return rf"backbone\.layers\.\d+\.({names})"


def apply_lora(model: nn.Module, cfg: FinetuneConfig) -> nn.Module:
    """Wrap a task model for LoRA: adapters on ``cfg.lora_targets``, the head trained fully.

    Parameters
    ----------
    model : CSBrainForClassification | CSBrainForRegression | CSBrainForSequenceClassification
    cfg : FinetuneConfig
        ``lora_rank``, ``lora_alpha``, ``lora_dropout``, ``lora_targets``.

    Returns
    -------
    peft.PeftModel
        Only the adapters and the copies of every part beside the backbone (the head; a
        sequence model's encoder and classifier) require gradients; ``backbone`` and the task
        model's attributes are reached through it.

    Raises
    ------
    ValueError
        A target names no linear layer of the encoder layers.
    """
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("method='lora' needs peft: pip install 'csbrain[lora]'") from err
    names = {n: m for n, m in model.named_modules()}
    for target in cfg.lora_targets:
        hits = [m for n, m in names.items() if re.fullmatch(lora_pattern([target]), n)]
        if not hits or not all(type(m) is nn.Linear for m in hits):
            layer = sorted(n.split(".", 3)[3] for n, m in names.items()
                           if n.startswith("backbone.layers.0.") and type(m) is nn.Linear)
            raise ValueError(f"lora_targets entry {target!r} names no linear layer of the "
                             f"encoder layers; expected names among {layer}")
    head = [n for n, _ in model.named_children() if n != "backbone"]  # e.g. head, classifier
    lora = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=lora_pattern(cfg.lora_targets), modules_to_save=head)
    wrapped = get_peft_model(model, lora)
    n_train = sum(p.numel() for p in wrapped.parameters() if p.requires_grad)
    logger.info("LoRA r=%d alpha=%g on %s: %d trainable parameters (adapters and head)",
                cfg.lora_rank, cfg.lora_alpha, list(cfg.lora_targets), n_train)
    return wrapped


def merged_copy(model: nn.Module) -> nn.Module:
    """A plain csbrain model with the adapters of a ``peft`` model merged (``model`` is kept)."""
    return copy.deepcopy(model).merge_and_unload()


def save_lora(model: nn.Module, run_dir: str | Path, *, extra: dict[str, Any] | None = None
              ) -> Path:
    """The saver of a LoRA run: adapters to ``run_dir/adapter``, the merged model as the run's
    ``config.json`` + ``model.safetensors`` (:func:`csbrain.engine.checkpoint.save_model`).

    Parameters
    ----------
    model : peft.PeftModel
        Unwrapped (not DDP).
    run_dir : path-like
    extra : dict | None
        ``config.json`` ``extra``.

    Returns
    -------
    Path
        ``run_dir``.
    """
    run_dir = Path(run_dir)
    tmp, final = run_dir / f".{ADAPTER_DIR}.tmp", run_dir / ADAPTER_DIR
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return ckpt.save_model(merged_copy(model), run_dir, extra=extra)


def merge_lora(model: nn.Module, adapter_dir: str | Path) -> nn.Module:
    """Load a run's adapters (and its head) onto ``model`` and merge them.

    Parameters
    ----------
    model : CSBrainForClassification | CSBrainForRegression
        The model the LoRA run started from (same backbone weights and head shape).
    adapter_dir : path-like
        A run's ``adapter/`` folder.

    Returns
    -------
    nn.Module
        The plain merged model (what the run saved as its model).
    """
    from peft import PeftModel

    with torch.no_grad():
        return PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
