"""Public entry points: :func:`pretrain` and :func:`finetune` (also launched by ``torchrun``).

Both: check the output folder is writable, open the data, build the model, run
:func:`csbrain.train.loop.train_loop`, write ``metrics.json``. The saved model's ``config.json``
``extra`` holds what inference needs (see :func:`model_extra`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from csbrain.engine import checkpoint as ckpt
from csbrain.engine import rundir
from csbrain.engine.corpus import open_corpus
from csbrain.engine.distributed import DistInfo, barrier, setup
from csbrain.engine.inference import embed_dataset, predict_outputs
from csbrain.engine.metrics import LOSS, SELECT_DEFAULT, VAL_PREFIX, save_metrics
from csbrain.engine.rundata import RunData, labelled_indices, open_run_data
from csbrain.engine.sequences import as_sequences
from csbrain.engine.splits import holdout_indices, leak_warning, split_indices
from csbrain.models import load_model
from csbrain.train.adapt import ProbeThenFinetune, apply_lora, save_lora
from csbrain.train.build import build_classifier, build_pretraining_model
from csbrain.train.config import FinetuneConfig, PretrainConfig
from csbrain.train.linear import fit_linear, fold_into_head
from csbrain.train.loop import train_loop
from csbrain.train.objectives import MaskedReconstruction, Supervised
from csbrain.train.seeds import seed_everything
from csbrain.train.training import LoopState

logger = logging.getLogger(__name__)

__all__ = ["RunResult", "pretrain", "finetune", "infer_task", "model_extra"]


@dataclass
class RunResult:
    """What a run produced: its folder, final metrics and loop state."""

    run_dir: Path
    metrics: dict[str, Any]
    state: LoopState


def model_extra(kind: str, data: RunData, **more: Any) -> dict[str, Any]:
    """The ``extra`` of a saved model: run kind, preprocessing, data fingerprint, ``more``."""
    return {"run": kind, "preprocessing": data.prep_config, "n_patches": data.n_patches,
            "label_names": list(data.label_names), "data": data.fingerprint, **more}


def infer_task(labels: np.ndarray) -> str:
    """``regression`` for non-integer labels, ``binary`` for labels {0, 1}, else ``multiclass``."""
    labels = np.asarray(labels)
    if labels.dtype.kind == "f" and not np.all(np.equal(np.mod(labels, 1), 0)):
        return "regression"
    classes = np.unique(labels)
    if len(classes) < 2:
        raise ValueError(f"the labelled windows hold a single class {classes.tolist()}; "
                         f"classification needs at least two")
    return "binary" if set(classes.tolist()) <= {0, 1} else "multiclass"


def _start(out: str | Path, cfg: Any, resume: bool) -> tuple[DistInfo, Path]:
    info = setup(cfg.device)
    if cfg.cpu_threads is not None:
        torch.set_num_threads(cfg.cpu_threads)
    return info, rundir.prepare_run_dir(out, resume=resume, info=info)


def _record(run_dir: Path, kind: str, cfg: Any, data: RunData, info: DistInfo, resume: bool,
            details: dict[str, Any]) -> None:
    """Create the run folder (the run can start: data opened, model built) and record it."""
    rundir.create_run_dir(run_dir, resume=resume, info=info)
    if resume:
        rundir.check_resume(run_dir, kind=kind, config=cfg, data=data.fingerprint)
    else:
        rundir.write_run_config(run_dir, kind=kind, config=cfg, data=data.fingerprint, info=info,
                                details=details)


def pretrain(cfg: PretrainConfig, data: str | Path | RunData, out: str | Path, *,
             resume: bool = False, hooks: tuple = ()) -> RunResult:
    """Pretrain a :class:`~csbrain.models.CSBrainForPretraining` by masked reconstruction.

    Parameters
    ----------
    cfg : PretrainConfig
    data : path-like | RunData | sequence of them
        Window stores (labels ignored) or in-memory windows: one, or several of any channel
        lists and lengths (batched group by group, sources weighted by
        ``cfg.source_weighting``).
    out : path-like
        Run folder (new, or the run to continue with ``resume``).
    resume : bool
        Continue from ``out/trainer_state.pt``.
    hooks : tuple of callables
        Passed to :func:`~csbrain.train.loop.train_loop`.

    Returns
    -------
    RunResult
        ``metrics``: ``train_loss`` (last epoch) and ``val_loss`` (if a hold-out exists; with
        several sources also ``val_loss_<source>``).
    """
    info, run_dir = _start(out, cfg, resume)
    train_set, val_set, rd = _pretraining_sets(data, cfg)
    seed_everything(cfg.seed)
    model = build_pretraining_model(rd, cfg)
    _record(run_dir, "pretrain", cfg, rd, info, resume,
            {"split": {"train": len(train_set), "val": len(val_set or ())}})
    select = cfg.select()
    objective = MaskedReconstruction(cfg.mask_ratio, seed=cfg.seed, rank=info.rank,
                                     select_val_loss=select != "last" and val_set is not None,
                                     batch_size=cfg.batch_size,
                                     mask_strategy=cfg.mask_strategy, target=cfg.target,
                                     spectral_weight=cfg.spectral_weight,
                                     vicreg_weight=cfg.vicreg_weight)
    state = train_loop(model, objective, train_set, cfg, run_dir,
                       info, val_set=val_set, resume=resume, hooks=hooks,
                       save_extra=model_extra("pretrain", rd, mask_ratio=cfg.mask_ratio,
                                              mask_token=cfg.mask_token, target=cfg.target,
                                              mask_strategy=cfg.mask_strategy))
    metrics: dict[str, Any] = {"kind": "pretrain", "steps": state.step,
                               "best_step": state.best_step}
    if info.is_main:
        if val_set is not None:
            best = load_model(run_dir).to(info.device)
            metrics[VAL_PREFIX + LOSS] = objective.evaluate(best, val_set, info)[LOSS]
        save_metrics(run_dir / rundir.METRICS_FINAL, metrics)
    barrier()
    return RunResult(run_dir, metrics, state)


def _pretraining_sets(data: Any, cfg: PretrainConfig
                      ) -> tuple[Dataset, Dataset | None, RunData]:
    """Training and hold-out windows of a pretraining run, and the :class:`RunData` that
    describes them (montage the model is built on, fingerprint, saved facts).

    One store of one channel list and length: plain subsets of its windows. Several stores, or
    mixed channel lists or lengths: :class:`~csbrain.engine.corpus.CorpusSubset` s, batched
    group by group (:class:`~csbrain.engine.sampler.GroupedBatchSampler`); the description
    is the first part's, with the corpus fingerprint.
    """
    corpus = open_corpus(list(data) if isinstance(data, (list, tuple)) else [data])
    first = corpus.parts[0]
    if len(corpus.parts) == 1:
        train_idx, val_idx = holdout_indices(first.groups[cfg.val_by], cfg.val_fraction,
                                             cfg.split_seed)
        sets = [Subset(first.dataset, idx.tolist()) for idx in (train_idx, val_idx)]
        return sets[0], sets[1] if len(val_idx) else None, first
    train_idx, val_idx = holdout_indices(corpus.holdout_groups[cfg.val_by], cfg.val_fraction,
                                         cfg.split_seed)
    preps = [json.dumps(p, sort_keys=True) for p in corpus.prep_configs]
    rd = dataclasses.replace(first, source=" ".join(corpus.source_names), label_names=[],
                             fingerprint=corpus.fingerprint,
                             prep_config=first.prep_config if len(set(preps)) == 1 else None)
    val = corpus.subset(val_idx) if len(val_idx) else None
    return corpus.subset(train_idx), val, rd


def _task_labels(rd: RunData, cfg: FinetuneConfig) -> tuple[np.ndarray, str, int]:
    """Indices of labelled windows, the task, the number of outputs."""
    labels = np.asarray(rd.labels)
    if len(labels) == 0:
        raise ValueError(f"data {rd.source!r} holds no window; fine-tuning needs labelled windows")
    labelled = labelled_indices(labels)
    if len(labelled) == 0:
        raise ValueError(f"data {rd.source!r} has no labels (every window is -1, unlabelled); "
                         f"prepare it with labels.mode=events, recording or trials to fine-tune")
    if len(labelled) < len(labels):
        logger.warning("%d unlabelled %s are left out", len(labels) - len(labelled),
                       "sequences" if labels.ndim > 1 else "windows")
    y = labels[labelled].ravel()
    y = y[labelled_indices(y)]                 # the labelled windows of labelled sequences
    task = cfg.task or infer_task(y)
    if task == "regression":
        return labelled, task, 1
    if not np.all(np.equal(np.mod(y, 1), 0)) or y.min() < 0:
        raise ValueError(f"task={task!r} needs class ids 0..K-1; got labels {np.unique(y)[:10]}")
    n_classes = max(int(y.max()) + 1, len(rd.label_names))
    if task == "binary":
        if n_classes > 2:
            raise ValueError(f"task='binary' but the labels hold {n_classes} classes; use "
                             f"task=multiclass")
        return labelled, task, 1
    return labelled, task, n_classes


def finetune(cfg: FinetuneConfig, data: str | Path | RunData, out: str | Path, *,
             resume: bool = False, hooks: tuple = ()) -> RunResult:
    """Fine-tune (or linearly probe) a classifier / regressor; select on val; test once.

    Parameters
    ----------
    cfg : FinetuneConfig
        ``cfg.init`` names the initial backbone (None: from scratch).
    data : path-like | RunData
        A labelled window store or in-memory windows (cut into sequences of
        ``cfg.sequence_length`` consecutive windows when that is set).
    out : path-like
    resume : bool
    hooks : tuple of callables

    Returns
    -------
    RunResult
        ``metrics``: ``task``, ``val`` and ``test`` metrics of the selected model (spec §5),
        ``best_step``, ``label_names``, split sizes.
    """
    info, run_dir = _start(out, cfg, resume)
    rd = open_run_data(data)
    if cfg.sequence_length:
        rd = as_sequences(rd, cfg.sequence_length)
    labelled, task, n_outputs = _task_labels(rd, cfg)
    select = cfg.select(task)            # a metric the task lacks stops here, before training
    if select == "auto":
        select = SELECT_DEFAULT[task]
    sub = split_indices({k: v[labelled] for k, v in rd.groups.items()}, cfg.split)
    leak = leak_warning(cfg.split, rd.prep_config)
    if leak:
        logger.warning(leak)
    parts = {k: labelled[v] for k, v in sub.items()}
    if not len(parts["val"]) and select != "last":
        logger.warning("no validation windows: the last model is kept (select_metric=last)")
        select = "last"
    seed_everything(cfg.seed)
    model = None  # built (initial weights loaded) before the run folder is made
    if cfg.method != "linear":
        model = build_classifier(rd, cfg, task, n_outputs)
        if cfg.method == "lora":
            model = apply_lora(model, cfg)
    _record(run_dir, "finetune", cfg, rd, info, resume,
            {"task": task, "n_outputs": n_outputs, "select_metric": select,
             "split": {k: len(v) for k, v in parts.items()},
             "split_recordings": {k: sorted(set(rd.groups["recording"][v].tolist()))
                                  for k, v in parts.items()}})
    eval_bs = cfg.eval_batch_size or cfg.batch_size
    common = {"label_smoothing": cfg.label_smoothing, "batch_size": eval_bs,
              "select": None if select == "last" else select}
    objective = (ProbeThenFinetune(task, probe_epochs=cfg.probe_epochs, **common)
                 if cfg.method == "lp_ft" else
                 Supervised(task, freeze_backbone=cfg.method == "probe", **common))
    sets = {k: Subset(rd.dataset, v.tolist()) for k, v in parts.items()}
    extra = model_extra("finetune", rd, task=task,
                        **({} if cfg.method == "full" else {"method": cfg.method}),
                        **({"sequence_length": cfg.sequence_length} if cfg.sequence_length
                           else {}))
    metrics: dict[str, Any] = {"kind": "finetune", "task": task, "select_metric": select}
    if cfg.method == "linear":
        state = LoopState(finished=True)
        if info.is_main:
            metrics["linear"] = _linear_run(rd, cfg, task, n_outputs, sets, objective,
                                            run_dir, info, extra)
    else:
        state = train_loop(model, objective, sets["train"], cfg, run_dir, info,
                           val_set=sets["val"] if len(parts["val"]) else None, resume=resume,
                           hooks=hooks, save_extra=extra,
                           saver=save_lora if cfg.method == "lora" else None)
        if state.best_step is None:  # nothing was selected: model.safetensors is the last one
            metrics["select_metric"] = "last"
    metrics.update({"best_step": state.best_step, "steps": state.step,
                    "label_names": list(rd.label_names),
                    "n": {k: len(v) for k, v in parts.items()}})
    if info.is_main:
        best = load_model(run_dir).to(info.device)
        for name in ("val", "test"):
            if len(parts[name]):
                outputs, y = predict_outputs(best, sets[name], batch_size=eval_bs,
                                             device=info.device)
                metrics[name] = objective.metrics(outputs, y)
        if not len(parts["test"]):               # a warning only if a test set was asked for
            log = logger.warning if cfg.split.test_fraction or cfg.split.test else logger.info
            log("no test windows: metrics.json has no test metrics")
        save_metrics(run_dir / rundir.METRICS_FINAL, metrics)
    barrier()
    return RunResult(run_dir, metrics, state)


def _linear_run(rd: RunData, cfg: FinetuneConfig, task: str, n_outputs: int,
                sets: dict[str, Subset], objective: Supervised, run_dir: Path, info: DistInfo,
                extra: dict[str, Any]) -> dict[str, Any]:
    """``method="linear"``: embed train / val once with the frozen backbone, fit and select
    the linear model (:mod:`csbrain.train.linear`), save it folded into a ``mean_bn`` head.

    Returns the chosen strength and the validation score of every strength.
    """
    model = build_classifier(rd, dataclasses.replace(cfg, head="mean_bn"), task, n_outputs)
    model.to(info.device).eval()
    labels = np.asarray(rd.labels)
    data = {k: (embed_dataset(model, ds, batch_size=objective.batch_size, device=info.device),
                labels[ds.indices]) for k, ds in sets.items() if k != "test" and len(ds)}
    fit = fit_linear(data["train"], data.get("val"), task, n_outputs, objective.select_key,
                     objective.metrics)
    fold_into_head(model, fit, task)
    ckpt.save_model(model, run_dir, extra=extra)
    return {"strength": fit.strength, "val_scores": {str(k): v for k, v in fit.scores.items()}}
