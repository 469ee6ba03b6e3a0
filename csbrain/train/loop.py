"""The one training loop of csbrain, used by pretraining and fine-tuning.

What differs between the two is an :class:`~csbrain.train.training.Objective` (the loss of a
batch, the evaluation of a validation set, which metric selects the model). The loop does the
rest: seeded shuffling through :class:`~csbrain.engine.distributed.ResumableSampler`, bf16
autocast, gradient clipping, AdamW with a per-iteration cosine schedule, DDP, metrics to
``metrics.jsonl`` (rank 0), the selected model to ``config.json`` + ``model.safetensors`` and
resumable checkpoints (``trainer_state.pt``). A run killed at any point and resumed from its
last checkpoint replays the same steps: on CPU its final weights equal those of an
uninterrupted run bit for bit.

:func:`train_loop` is a sequence of named steps over one
:class:`~csbrain.train.training.Training` (everything a run holds; its position is the
:class:`~csbrain.train.training.LoopState` that checkpoints save)::

    start_training          check, build sampler / optimiser / schedule, resume, wrap DDP
    for each epoch:
        start_epoch         position the sampler, seed the loader
        for each batch:
            train_step      forward, backward, optimiser and schedule step, log line
            end_of_step     evaluate / checkpoint at their step intervals
        end_of_epoch        mean train loss, evaluation at epoch ends, next epoch
        save_checkpoint     at epoch ends (or only at the end with step intervals)
    finish_training         the last model if nothing was ever selected
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from csbrain.engine import checkpoint as ckpt
from csbrain.engine.distributed import (
    DistInfo,
    all_reduce_sum,
    barrier,
    broadcast_object,
    wrap_ddp,
)
from csbrain.engine.metrics import VAL_PREFIX
from csbrain.train.config import TrainConfig
from csbrain.train.seeds import stream_seed
from csbrain.train.training import LoopState, Objective, Training, start_training

logger = logging.getLogger(__name__)

__all__ = ["train_loop", "start_epoch", "train_step", "end_of_step", "end_of_epoch", "validate",
           "select_model", "save_checkpoint", "finish_training"]


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


def start_epoch(tr: Training) -> None:
    """Position the sampler at the state's epoch and batch; seed the loader for the epoch; let
    an objective with phases (``set_epoch``, e.g. LP-FT) freeze or unfreeze parameters."""
    set_phase = getattr(tr.objective, "set_epoch", None)
    if set_phase is not None and set_phase(tr.inner, tr.state.epoch) and tr.info.distributed:
        tr.model = wrap_ddp(tr.inner, tr.info)  # DDP registers the trainable set when built
    tr.sampler.set_epoch(tr.state.epoch)
    tr.sampler.set_start(tr.sampler_start())
    tr.loader_gen.manual_seed(stream_seed(tr.cfg.seed, tr.state.epoch))


def train_step(tr: Training, batch: Any) -> None:
    """One optimiser step on ``batch``; advance the state; log every ``log_every`` steps.

    Raises
    ------
    FloatingPointError
        The loss is not finite.
    """
    state, cfg = tr.state, tr.cfg
    batch = tr.batch_on_its_montage(_to_device(batch, tr.info.device))
    with tr.autocast():
        loss = tr.objective.loss(tr.model, batch, tr.info)
    if not torch.isfinite(loss):
        raise FloatingPointError(f"loss is {loss.item()} at step {state.step} (epoch "
                                 f"{state.epoch}); lower lr or check the data")
    tr.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = (torch.nn.utils.clip_grad_norm_(tr.model.parameters(), cfg.grad_clip)
                 if cfg.grad_clip is not None else None)
    lr_now = tr.optimizer.param_groups[0]["lr"]
    tr.optimizer.step()
    tr.scheduler.step()
    state.step += 1
    state.batch_in_epoch += 1
    value = float(loss.detach())
    state.epoch_loss_sum += value
    state.epoch_loss_count += 1
    tr.bar.update(1)
    tr.bar.set_postfix(loss=f"{value:.4g}", epoch=state.epoch)
    if state.step % cfg.log_every == 0 or state.step == tr.total:
        tr.log.write({"step": state.step, "epoch": state.epoch, "loss": value, "lr": lr_now,
                      "grad_norm": None if grad_norm is None else float(grad_norm),
                      "time_s": round(time.perf_counter() - tr.t0, 3)})


def end_of_step(tr: Training) -> bool:
    """Evaluate and checkpoint at their step intervals; return whether this was the last step."""
    state, cfg = tr.state, tr.cfg
    last = state.step >= tr.total
    if cfg.eval_every and (state.step % cfg.eval_every == 0 or last):
        metrics = validate(tr)
        tr.log.write({"step": state.step, "epoch": state.epoch, **metrics})
        select_model(tr, metrics)
    if (cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0) and not last:
        save_checkpoint(tr)
    return last


def end_of_epoch(tr: Training) -> None:
    """Log the epoch's mean train loss (over ranks), evaluate if evaluation is per epoch, and
    move the state to the next epoch."""
    state = tr.state
    mean = all_reduce_sum(torch.tensor([state.epoch_loss_sum, state.epoch_loss_count],
                                       dtype=torch.float64, device=tr.info.device))
    record = {"step": state.step, "epoch": state.epoch,
              "train_loss": float(mean[0] / mean[1].clamp_min(1))}
    if not tr.cfg.eval_every:
        metrics = validate(tr)
        record.update(metrics)
        select_model(tr, metrics)
    tr.log.write(record)
    state.epoch += 1
    state.batch_in_epoch = 0
    state.epoch_loss_sum, state.epoch_loss_count = 0.0, 0


def validate(tr: Training) -> dict[str, Any]:
    """The objective's metrics on the validation set (rank 0, eval mode, no grad), keys
    prefixed ``val_``, shared with every rank; ``{}`` without a validation set."""
    metrics: dict[str, Any] = {}
    if tr.val_set is not None and len(tr.val_set) and tr.info.is_main:
        inner = tr.inner
        inner.eval()
        with torch.no_grad(), tr.autocast():
            metrics = {f"{VAL_PREFIX}{k}": v for k, v in
                       tr.objective.evaluate(inner, tr.val_set, tr.info).items()}
        tr.objective.train_mode(tr.model)
    return broadcast_object(metrics) if tr.info.distributed else metrics


def _better(value: float, best: float | None, mode: str) -> bool:
    if math.isnan(value):
        return False
    return best is None or (value > best if mode == "max" else value < best)


def select_model(tr: Training, metrics: dict[str, Any]) -> None:
    """Save the model (rank 0) if ``metrics`` hold a new best of the objective's select key.

    An undefined value (None, e.g. AUROC of a one-class validation set) selects nothing.
    """
    key = tr.objective.select_key
    if key is None:
        return
    name = VAL_PREFIX + key
    if name not in metrics:  # select_metric is checked against the task before training
        raise RuntimeError(f"the objective selects on {key!r} but its evaluation gave "
                           f"{sorted(metrics)}")
    value = metrics[name]
    if value is None:
        logger.warning("step %d: %s is undefined; no model selected on it", tr.state.step, name)
        return
    if _better(float(value), tr.state.best_metric, tr.objective.select_mode):
        tr.state.best_metric, tr.state.best_step = float(value), tr.state.step
        if tr.info.is_main:
            tr.save_model()
        logger.info("step %d: new best %s = %.5g", tr.state.step, name, value)


def save_checkpoint(tr: Training) -> None:
    """Write ``trainer_state.pt`` (rank 0; RNG and objective states of every rank), and the
    model itself when the run keeps its last model; wait for every rank."""
    rng = [ckpt.rng_state()]
    obj = [tr.objective.state_dict()]
    if tr.info.distributed:
        rng, obj = _gather(rng[0]), _gather(obj[0])
    if tr.info.is_main:
        if tr.objective.select_key is None:
            tr.save_model()
        tr.state.log_bytes = tr.log.size()
        ckpt.save_trainer_state(tr.run_dir, {
            "model": tr.inner.state_dict(), "optimizer": tr.optimizer.state_dict(),
            "scheduler": tr.scheduler.state_dict(), "rng": rng, "objective": obj,
            "loop": asdict(tr.state)})
    barrier()


def finish_training(tr: Training) -> None:
    """Close the progress bar; save the last model if no validation ever selected one."""
    tr.bar.close()
    if tr.objective.select_key is not None and tr.state.best_step is None and tr.info.is_main:
        logger.warning("no validation metric was computed; saving the last model")
        tr.save_model()
    barrier()


def train_loop(model: torch.nn.Module, objective: Objective, train_set: Dataset,
               cfg: TrainConfig, run_dir: str | Path, info: DistInfo, *,
               val_set: Dataset | None = None, resume: bool = False,
               save_extra: dict[str, Any] | None = None,
               hooks: Sequence[Callable[[LoopState], None]] = (),
               saver: Callable[..., Any] | None = None) -> LoopState:
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
        From :func:`csbrain.engine.distributed.setup`.
    val_set : Dataset | None
        Evaluated every ``eval_every`` steps (0: every epoch) on rank 0.
    resume : bool
        Continue from ``run_dir/trainer_state.pt``.
    save_extra : dict | None
        Stored in the saved model's ``config.json`` ``extra`` (preprocessing, labels...).
    hooks : sequence of callables
        Called with the :class:`LoopState` after every step (after any checkpoint); an
        exception raised there stops the run.
    saver : callable | None
        Writes the selected / last model: ``saver(model, run_dir, extra=save_extra)``
        (None: :func:`csbrain.engine.checkpoint.save_model`).

    Returns
    -------
    LoopState
    """
    tr = start_training(model, objective, train_set, cfg, run_dir, info, val_set=val_set,
                        resume=resume, save_extra=save_extra, saver=saver)
    objective.train_mode(tr.model)
    while tr.state.step < tr.total and not tr.state.finished:
        start_epoch(tr)
        for batch in tr.loader:
            train_step(tr, batch)
            last = end_of_step(tr)
            for hook in hooks:
                hook(tr.state)
            if last:
                break
        if tr.state.batch_in_epoch >= tr.steps_per_epoch:
            end_of_epoch(tr)
        if tr.state.step >= tr.total:
            tr.state.finished = True
        if not cfg.checkpoint_every or tr.state.finished:
            save_checkpoint(tr)
    finish_training(tr)
    return tr.state


def _gather(obj: Any) -> list[Any]:
    import torch.distributed as dist

    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out
