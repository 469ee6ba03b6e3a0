"""The one training loop of csbrain, used by pretraining and fine-tuning.

What differs between the two is an :class:`Objective` (the loss of a batch, the evaluation of a
validation set, which metric selects the model). The loop does the rest: seeded shuffling
through :class:`~csbrain.train.distributed.ResumableSampler`, bf16 autocast, gradient clipping,
AdamW with a per-iteration cosine schedule, DDP, metrics to ``metrics.jsonl`` (rank 0), the
selected model to ``config.json`` + ``model.safetensors`` and resumable checkpoints
(``trainer_state.pt``). A run killed at any point and resumed from its last checkpoint replays
the same steps: on CPU its final weights equal those of an uninterrupted run bit for bit.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from csbrain._io import atomic_write_bytes
from csbrain.train import checkpoint as ckpt
from csbrain.train.config import TrainConfig
from csbrain.train.distributed import (DistInfo, ResumableSampler, all_reduce_sum, barrier,
                                       broadcast_object, unwrap, wrap_ddp)
from csbrain.train.optim import build_optimizer, cosine_with_warmup

logger = logging.getLogger(__name__)

__all__ = ["Objective", "LoopState", "train_loop", "seed_everything", "use_bf16",
           "METRICS_LOG"]

METRICS_LOG = "metrics.jsonl"


class Objective(Protocol):
    """What a training run optimises and how it is judged.

    Attributes
    ----------
    select_key : str | None
        Key of :meth:`evaluate`'s result that selects the saved model; None keeps the last.
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


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def use_bf16(setting: bool | None, device: torch.device) -> bool:
    """Resolve the ``bf16`` option: None means on for CUDA devices that support it."""
    if setting is None:
        return device.type == "cuda" and torch.cuda.is_bf16_supported()
    if setting and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError("bf16=true but this GPU does not support bfloat16; set bf16=false")
    return bool(setting)


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


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


def _better(value: float, best: float | None, mode: str) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return best is None or (value > best if mode == "max" else value < best)


def train_loop(model: torch.nn.Module, objective: Objective, train_set: Dataset,
               cfg: TrainConfig, run_dir: str | Path, info: DistInfo, *,
               val_set: Dataset | None = None, resume: bool = False,
               save_extra: dict[str, Any] | None = None,
               hooks: Sequence[Callable[[LoopState], None]] = ()) -> LoopState:
    """Train ``model`` on ``train_set``; write metrics, the selected model and checkpoints.

    Parameters
    ----------
    model : torch.nn.Module
        A csbrain model (with ``save_pretrained``), on the CPU or ``info.device``; not wrapped.
    objective : Objective
    train_set : Dataset
        Items ``(x (C, P, 200), y)``.
    cfg : TrainConfig
        Seed, schedule, batch size, clipping, bf16, logging / eval / checkpoint intervals.
    run_dir : path-like
        Existing, writable folder (rank 0 writes; other ranks only read on resume).
    info : DistInfo
        From :func:`csbrain.train.distributed.setup`.
    val_set : Dataset | None
        Evaluated every ``eval_every`` steps (0: every epoch) on rank 0.
    resume : bool
        Continue from ``run_dir/trainer_state.pt``.
    save_extra : dict | None
        Stored in the saved model's ``config.json`` ``extra`` (preprocessing, labels...).
    hooks : sequence of callables
        Called with the :class:`LoopState` after every step (after any checkpoint); an
        exception raised there stops the run (tests use it to simulate a kill).

    Returns
    -------
    LoopState
    """
    run_dir = Path(run_dir)
    log = _MetricsLog(run_dir / METRICS_LOG, info.is_main)
    if len(train_set) == 0:
        raise ValueError("the training set is empty; expected at least one window")
    if cfg.batch_size % info.world_size:
        raise ValueError(f"batch_size={cfg.batch_size} (global) does not divide over "
                         f"{info.world_size} processes; choose a multiple of {info.world_size}")
    if objective.select_key is not None and (val_set is None or len(val_set) == 0):
        raise ValueError(f"model selection on {objective.select_key!r} needs a validation set; "
                         f"pass val_set or select the last model")
    per_rank = cfg.batch_size // info.world_size
    sampler = ResumableSampler(train_set, num_replicas=info.world_size, rank=info.rank,
                               shuffle=True, seed=cfg.seed)
    loader_gen = torch.Generator()
    loader = DataLoader(train_set, batch_size=per_rank, sampler=sampler,
                        num_workers=cfg.num_workers, generator=loader_gen,
                        pin_memory=info.device.type == "cuda")
    steps_per_epoch = math.ceil(sampler.num_samples / per_rank)
    total = cfg.max_steps or cfg.epochs * steps_per_epoch
    warmup = cfg.warmup_steps or int(round(cfg.warmup_epochs * steps_per_epoch))

    model.to(info.device)
    optimizer = build_optimizer(
        model, lr=cfg.lr, weight_decay=cfg.weight_decay,
        decay_norm_and_bias=cfg.decay_norm_and_bias,
        backbone_lr=getattr(cfg, "backbone_lr", None), head_lr=getattr(cfg, "head_lr", None))
    scheduler = cosine_with_warmup(optimizer, total_steps=total, warmup_steps=warmup, lr=cfg.lr,
                                   min_lr=cfg.min_lr)
    state = LoopState(total_steps=total)
    seed_everything(cfg.seed + info.rank)
    if resume:
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
    ddp_model = wrap_ddp(model, info)
    amp = use_bf16(cfg.bf16, info.device)
    autocast = (lambda: torch.autocast(info.device.type, dtype=torch.bfloat16)) if amp \
        else contextlib.nullcontext

    def evaluate() -> dict[str, Any]:
        metrics: dict[str, Any] = {}
        if val_set is not None and len(val_set) and info.is_main:
            inner = unwrap(ddp_model)
            inner.eval()
            with torch.no_grad(), autocast():
                metrics = {f"val_{k}": v for k, v in
                           objective.evaluate(inner, val_set, info).items()}
            objective.train_mode(ddp_model)
        return broadcast_object(metrics) if info.distributed else metrics

    def select(metrics: dict[str, Any]) -> None:
        key = objective.select_key
        if key is None:
            return
        value = metrics.get(key)
        if value is None:
            raise ValueError(f"select metric {key!r} is not among the validation metrics "
                             f"{sorted(metrics)}")
        if _better(float(value), state.best_metric, objective.select_mode):
            state.best_metric, state.best_step = float(value), state.step
            if info.is_main:
                ckpt.save_model(unwrap(ddp_model), run_dir, extra=save_extra)
            logger.info("step %d: new best %s = %.5g", state.step, key, value)

    def checkpoint() -> None:
        rng = [ckpt.rng_state()]
        obj = [objective.state_dict()]
        if info.distributed:
            rng, obj = _gather(rng[0]), _gather(obj[0])
        if info.is_main:
            if objective.select_key is None:
                ckpt.save_model(unwrap(ddp_model), run_dir, extra=save_extra)
            state.log_bytes = log.size()
            ckpt.save_trainer_state(run_dir, {
                "model": unwrap(ddp_model).state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "rng": rng, "objective": obj,
                "loop": asdict(state)})
        barrier()

    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=state.step, desc="train", unit="step", dynamic_ncols=True,
               disable=not (cfg.progress and info.is_main))
    objective.train_mode(ddp_model)
    t0 = time.perf_counter()
    while state.step < total and not state.finished:
        sampler.set_epoch(state.epoch)
        sampler.set_start(state.batch_in_epoch * per_rank)
        loader_gen.manual_seed(cfg.seed * 1_000_003 + state.epoch)
        for batch in loader:
            batch = _to_device(batch, info.device)
            with autocast():
                loss = objective.loss(ddp_model, batch, info)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss is {loss.item()} at step {state.step} (epoch "
                                         f"{state.epoch}); lower lr or check the data")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = (torch.nn.utils.clip_grad_norm_(ddp_model.parameters(), cfg.grad_clip)
                         if cfg.grad_clip is not None else None)
            lr_now = optimizer.param_groups[0]["lr"]
            optimizer.step()
            scheduler.step()
            state.step += 1
            state.batch_in_epoch += 1
            value = float(loss.detach())
            state.epoch_loss_sum += value
            state.epoch_loss_count += 1
            bar.update(1)
            bar.set_postfix(loss=f"{value:.4g}", epoch=state.epoch)
            if state.step % cfg.log_every == 0 or state.step == total:
                log.write({"step": state.step, "epoch": state.epoch, "loss": value,
                           "lr": lr_now, "grad_norm": None if grad_norm is None
                           else float(grad_norm), "time_s": round(time.perf_counter() - t0, 3)})
            last = state.step >= total
            if cfg.eval_every and (state.step % cfg.eval_every == 0 or last):
                metrics = evaluate()
                log.write({"step": state.step, "epoch": state.epoch, **metrics})
                select(metrics)
            if (cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0) and not last:
                checkpoint()
            for hook in hooks:
                hook(state)
            if last:
                break
        epoch_done = state.batch_in_epoch >= steps_per_epoch
        if epoch_done:
            mean = all_reduce_sum(torch.tensor([state.epoch_loss_sum, state.epoch_loss_count],
                                               dtype=torch.float64, device=info.device))
            record = {"step": state.step, "epoch": state.epoch,
                      "train_loss": float(mean[0] / mean[1].clamp_min(1))}
            if not cfg.eval_every:
                metrics = evaluate()
                record.update(metrics)
                select(metrics)
            log.write(record)
            state.epoch += 1
            state.batch_in_epoch = 0
            state.epoch_loss_sum, state.epoch_loss_count = 0.0, 0
        if state.step >= total:
            state.finished = True
        if not cfg.checkpoint_every or state.finished:
            checkpoint()
    bar.close()
    if objective.select_key is not None and state.best_step is None and info.is_main:
        logger.warning("no validation metric was computed; saving the last model")
        ckpt.save_model(unwrap(ddp_model), run_dir, extra=save_extra)
    barrier()
    return state


def _gather(obj: Any) -> list[Any]:
    import torch.distributed as dist

    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out
