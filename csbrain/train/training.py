"""A training run's state and set-up: :class:`Objective` (what differs between pretraining and
fine-tuning), :class:`LoopState` (the position a checkpoint saves), :class:`Training` (everything
a run holds while it trains) and :func:`start_training`, which builds it. The steps that advance
it are in :mod:`csbrain.train.loop`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch.utils.data import DataLoader, Dataset

from csbrain._io import atomic_write_bytes
from csbrain.engine import checkpoint as ckpt
from csbrain.engine.corpus import CorpusSubset
from csbrain.engine.distributed import DistInfo, ResumableSampler, unwrap, wrap_ddp
from csbrain.engine.loader import PrefetchLoader, train_loader
from csbrain.engine.rundir import METRICS_LOG
from csbrain.engine.sampler import GroupedBatchSampler
from csbrain.train.config import TrainConfig
from csbrain.train.optim import build_optimizer, cosine_with_warmup
from csbrain.train.seeds import seed_everything

logger = logging.getLogger(__name__)

__all__ = ["Objective", "LoopState", "Training", "start_training", "use_bf16"]


class Objective(Protocol):
    """What a training run optimises and how it is judged.

    Attributes
    ----------
    select_key : str | None
        Key of :meth:`evaluate`'s result that selects the saved model (logged with the
        ``val_`` prefix); None keeps the last.
    select_mode : {"max", "min"}
    """

    select_key: str | None
    select_mode: str

    def loss(self, model: torch.nn.Module, batch: Any, info: DistInfo) -> torch.Tensor:
        """Scalar loss of one batch (already on ``info.device``) under autocast."""

    def evaluate(self, model: torch.nn.Module, dataset: Dataset, info: DistInfo) -> dict[str, Any]:
        """Metrics of the (unwrapped, eval-mode) model on a dataset; called on rank 0 only."""

    def train_mode(self, model: torch.nn.Module) -> None:
        """Put the model in training mode (a frozen backbone stays in eval mode)."""

    def state_dict(self) -> dict[str, Any]:
        """Objective RNG state to checkpoint (e.g. the mask generator)."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""


@dataclass
class LoopState:
    """Position of a run; saved in ``trainer_state.pt``."""

    epoch: int = 0
    batch_in_epoch: int = 0
    step: int = 0
    total_steps: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    epoch_loss_sum: float = 0.0
    epoch_loss_count: int = 0
    finished: bool = False
    log_bytes: int = 0


def use_bf16(setting: bool | None, device: torch.device) -> bool:
    """Resolve the ``bf16`` option: None means on for CUDA devices that support it."""
    if setting is None:
        return device.type == "cuda" and torch.cuda.is_bf16_supported()
    if setting and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError("bf16=true but this GPU does not support bfloat16; set bf16=false")
    return bool(setting)


class _MetricsLog:
    """Rank-0 JSON-lines log; on resume it is cut back to its size at the checkpoint."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self.path, self.enabled = path, enabled

    def size(self) -> int:
        return self.path.stat().st_size if self.enabled and self.path.is_file() else 0

    def truncate(self, size: int) -> None:
        if self.enabled and self.path.is_file() and self.path.stat().st_size > size:
            data = self.path.read_bytes()[:size]
            atomic_write_bytes(self.path, data)

    def write(self, record: dict[str, Any]) -> None:
        if self.enabled:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")


@dataclass
class Training:
    """Everything a run holds while it trains; only :attr:`state` is saved (with the weights,
    optimiser, schedule and RNG states) by :func:`save_checkpoint`.

    Attributes
    ----------
    model : torch.nn.Module
        The model being trained, wrapped in DDP when the world has several ranks.
    steps_per_epoch, per_rank : int
        Optimiser steps per epoch; batch size per rank.
    amp : bool
        bf16 autocast.
    saver : callable
        ``saver(model, run_dir, extra=...)`` writes the (unwrapped) model as the run's model
        (default :func:`csbrain.engine.checkpoint.save_model`; LoRA runs save the merged
        model and the adapters).
    """

    model: torch.nn.Module
    objective: Objective
    optimizer: torch.optim.Optimizer
    scheduler: Any
    sampler: ResumableSampler | GroupedBatchSampler
    loader: DataLoader | PrefetchLoader
    loader_gen: torch.Generator
    cfg: TrainConfig
    info: DistInfo
    run_dir: Path
    log: _MetricsLog
    state: LoopState
    steps_per_epoch: int
    per_rank: int
    amp: bool
    val_set: Dataset | None
    save_extra: dict[str, Any] | None
    bar: Any
    t0: float
    saver: Callable[..., Any] = ckpt.save_model

    @property
    def total(self) -> int:
        """Optimiser steps of the whole run."""
        return self.state.total_steps

    def sampler_start(self) -> int:
        """Where the sampler resumes this epoch: batches for a grouped sampler, else windows
        of this rank."""
        per_item = 1 if isinstance(self.sampler, GroupedBatchSampler) else self.per_rank
        return self.state.batch_in_epoch * per_item

    def batch_on_its_montage(self, batch: Any) -> Any:
        """``(x, y)`` of ``batch``; a grouped batch ``(x, y, group)`` also switches the model
        to its group's montage (each layout built once, see ``CSBrain.set_montage``)."""
        if not isinstance(self.loader.dataset, CorpusSubset):
            return batch
        x, y, group = batch
        backbone = getattr(self.inner, "backbone", self.inner)
        backbone.set_montage(self.loader.dataset.montages[int(group[0])])
        return x, y

    @property
    def inner(self) -> torch.nn.Module:
        """The model without its DDP wrapper (what is saved and evaluated)."""
        return unwrap(self.model)

    def save_model(self) -> None:
        """Write the unwrapped model as the run's model (``config.json`` + weights); a model
        trained on several montages is saved on the first (weights do not depend on it)."""
        if isinstance(self.loader.dataset, CorpusSubset):
            getattr(self.inner, "backbone", self.inner).set_montage(
                self.loader.dataset.montages[0])
        self.saver(self.inner, self.run_dir, extra=self.save_extra)

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on the run's device, or a no-op context."""
        if self.amp:
            return torch.autocast(self.info.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()


def _check_inputs(objective: Objective, train_set: Dataset, cfg: TrainConfig, info: DistInfo,
                  val_set: Dataset | None) -> None:
    if len(train_set) == 0:
        raise ValueError("the training set is empty; expected at least one window")
    if cfg.batch_size % info.world_size:
        raise ValueError(f"batch_size={cfg.batch_size} (global) does not divide over "
                         f"{info.world_size} processes; choose a multiple of {info.world_size}")
    if objective.select_key is not None and (val_set is None or len(val_set) == 0):
        raise ValueError(f"model selection on {objective.select_key!r} needs a validation set; "
                         f"pass val_set or select the last model")


def _restore(run_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
             scheduler: Any, objective: Objective, info: DistInfo, log: _MetricsLog,
             total: int) -> LoopState:
    """Load ``trainer_state.pt`` into the run's parts; return its loop state."""
    saved = ckpt.load_trainer_state(run_dir)
    if saved["loop"]["total_steps"] != total:
        raise ValueError(f"cannot resume: the checkpoint's run has "
                         f"{saved['loop']['total_steps']} steps but this configuration "
                         f"gives {total} (epochs, max_steps, batch_size or the data changed)")
    unwrap(model).load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    objective.load_state_dict(saved["objective"][info.rank])
    ckpt.set_rng_state(saved["rng"][info.rank])
    state = LoopState(**saved["loop"])
    log.truncate(state.log_bytes)
    logger.info("resumed %s at step %d of %d (epoch %d)", run_dir, state.step, total,
                state.epoch)
    return state


def start_training(model: torch.nn.Module, objective: Objective, train_set: Dataset,
                   cfg: TrainConfig, run_dir: str | Path, info: DistInfo, *,
                   val_set: Dataset | None = None, resume: bool = False,
                   save_extra: dict[str, Any] | None = None,
                   saver: Callable[..., Any] | None = None) -> Training:
    """Check the inputs and build a :class:`Training` (resumed from ``run_dir`` if asked).

    Seeds the global RNGs with ``cfg.seed + rank`` (a resume then restores the checkpoint's).
    With ``cfg.method == "lp_ft"`` the backbone's schedule starts after ``cfg.probe_epochs``
    epochs. Parameters: see :func:`csbrain.train.loop.train_loop`.
    """
    run_dir = Path(run_dir)
    log = _MetricsLog(run_dir / METRICS_LOG, info.is_main)
    _check_inputs(objective, train_set, cfg, info, val_set)
    per_rank = cfg.batch_size // info.world_size
    loader_gen = torch.Generator()
    threads = getattr(cfg, "loader_threads", 0)
    if isinstance(train_set, CorpusSubset) or cfg.shuffle == "block" or threads:
        # grouped batches (several montages / lengths), the block shuffle, reading threads
        loader, sampler = train_loader(
            train_set, cfg.batch_size, shuffle=cfg.shuffle, block_windows=cfg.shuffle_block,
            num_workers=cfg.num_workers, threads=threads, seed=cfg.seed,
            num_replicas=info.world_size,
            rank=info.rank, weighting=getattr(cfg, "source_weighting", "proportional"),
            pin_memory=info.device.type == "cuda", generator=loader_gen)
        steps_per_epoch = sampler.batches_per_epoch
    else:
        sampler = ResumableSampler(train_set, num_replicas=info.world_size, rank=info.rank,
                                   shuffle=True, seed=cfg.seed)
        loader = DataLoader(train_set, batch_size=per_rank, sampler=sampler,
                            num_workers=cfg.num_workers, generator=loader_gen,
                            pin_memory=info.device.type == "cuda")
        steps_per_epoch = math.ceil(sampler.num_samples / per_rank)
    total = cfg.max_steps or cfg.epochs * steps_per_epoch
    warmup = cfg.warmup_steps or int(round(cfg.warmup_epochs * steps_per_epoch))

    backbone_start = (cfg.probe_epochs * steps_per_epoch
                      if getattr(cfg, "method", "full") == "lp_ft" else 0)
    model.to(info.device)
    optimizer = build_optimizer(
        model, lr=cfg.lr, weight_decay=cfg.weight_decay,
        decay_norm_and_bias=cfg.decay_norm_and_bias,
        backbone_lr=getattr(cfg, "backbone_lr", None), head_lr=getattr(cfg, "head_lr", None),
        layer_decay=getattr(cfg, "layer_decay", 1.0))
    scheduler = cosine_with_warmup(optimizer, total_steps=total, warmup_steps=warmup, lr=cfg.lr,
                                   min_lr=cfg.min_lr, backbone_start=backbone_start)
    seed_everything(cfg.seed + info.rank)
    state = (_restore(run_dir, model, optimizer, scheduler, objective, info, log, total)
             if resume else LoopState(total_steps=total))
    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=state.step, desc="train", unit="step", dynamic_ncols=True,
               disable=not (cfg.progress and info.is_main))
    return Training(model=wrap_ddp(model, info), objective=objective, optimizer=optimizer,
                    scheduler=scheduler, sampler=sampler, loader=loader, loader_gen=loader_gen,
                    cfg=cfg, info=info, run_dir=run_dir, log=log, state=state,
                    steps_per_epoch=steps_per_epoch, per_rank=per_rank,
                    amp=use_bf16(cfg.bf16, info.device), val_set=val_set,
                    save_extra=save_extra, bar=bar, t0=time.perf_counter(),
                    saver=saver or ckpt.save_model)


