"""Evaluate a saved classifier / regressor (run folder or model folder) on a window store.

The model must read the data as it was trained: same channels (canonical names, in order) and
the same preprocessing parameters (every :class:`~csbrain.data.prepconfig.PrepConfig` field
except the ``store`` section, which only changes how windows are stored). A mismatch is an error
naming both sides.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Subset

from csbrain._checks import more
from csbrain.configio import config_diff, from_dict
from csbrain.engine.distributed import resolve_device
from csbrain.engine.inference import predict_outputs
from csbrain.engine.metrics import compute_metrics, scores_from_outputs
from csbrain.engine.rundata import RunData, labelled_indices, open_run_data
from csbrain.engine.rundir import RUN_CONFIG, read_run_config
from csbrain.engine.sequences import as_sequences, flatten_sequences
from csbrain.engine.splits import SplitConfig, normalise_store_split, split_indices
from csbrain.eval.config import InferenceConfig
from csbrain.models import (
    CSBrainForClassification,
    CSBrainForRegression,
    CSBrainForSequenceClassification,
    load_model,
    read_model_config,
)

logger = logging.getLogger(__name__)

__all__ = ["check_compatible", "model_task", "sequence_length_of", "evaluate",
           "IGNORED_PREP_KEYS"]

#: PrepConfig keys that may differ between a model and the data it reads.
IGNORED_PREP_KEYS = ("store.",)


def model_task(model: Any, meta_extra: dict[str, Any]) -> str:
    """Task kind of a saved model: ``extra["task"]`` or its class and number of outputs."""
    if meta_extra.get("task"):
        return meta_extra["task"]
    if isinstance(model, CSBrainForRegression):
        return "regression"
    if isinstance(model, (CSBrainForClassification, CSBrainForSequenceClassification)):
        return "binary" if model.n_outputs == 1 else "multiclass"
    raise ValueError(f"{type(model).__name__} has no classification or regression head; "
                     f"evaluate / predict need a fine-tuned model (csbrain finetune)")


def sequence_length_of(model: Any, meta_extra: dict[str, Any], name: str) -> int | None:
    """``extra["sequence_length"]`` of a sequence model (None for other models); a sequence
    model that records none is an error."""
    if not isinstance(model, CSBrainForSequenceClassification):
        return None
    length = meta_extra.get("sequence_length")
    if not length:
        raise ValueError(f"model {name!r} labels sequences of windows but its config.json "
                         f"records no extra.sequence_length; add it (the length it was "
                         f"trained on)")
    return int(length)


def check_compatible(meta: dict[str, Any], montage: Any, prep_config: dict[str, Any] | None, *,
                     model_name: str, data_name: str) -> None:
    """Raise ``ValueError`` if a saved model does not read ``montage`` / ``prep_config`` data.

    Parameters
    ----------
    meta : dict
        The model folder's ``config.json`` (:func:`csbrain.models.read_model_config`).
    montage : Montage
        The data's channels.
    prep_config : dict | None
        The data's preprocessing config; None skips that check.
    model_name, data_name : str
        For the message.
    """
    want = list(meta["montage"]["canonical"] or meta["montage"]["channels"])
    have = list(montage.canonical)
    if want != have:
        missing = [c for c in want if c not in have]
        extra = [c for c in have if c not in want]
        detail = (f"missing [{more(missing)}], extra [{more(extra)}]" if missing or extra
                  else "same channels in another order")
        raise ValueError(f"model {model_name!r} reads {len(want)} channels [{more(want, 20)}] but "
                         f"{data_name!r} has {len(have)} [{more(have, 20)}] ({detail}); prepare "
                         f"the "
                         f"data with channels.pick set to the model's channels")
    saved = (meta.get("extra") or {}).get("preprocessing")
    if saved is None or prep_config is None:
        if saved is None:
            logger.warning("model %s records no preprocessing config; cannot check that %s "
                           "was prepared the same way", model_name, data_name)
        return
    diff = [d for d in config_diff(saved, prep_config)
            if not d.startswith(IGNORED_PREP_KEYS)]
    if diff:
        raise ValueError(f"model {model_name!r} was trained on data prepared differently from "
                         f"{data_name!r}: {more(diff, 6)} "
                         f"(model value != data value); prepare the data with the model's "
                         f"config (config.json extra.preprocessing)")


def _windows_of_split(rd: RunData, labelled: np.ndarray, run_cfg: dict[str, Any] | None,
                      split: str) -> np.ndarray:
    """Indices of ``split`` among the labelled windows."""
    if split == "all":
        return labelled
    same_data = run_cfg is not None and \
        run_cfg.get("data", {}).get("sha256") == rd.fingerprint.get("sha256")
    if same_data:
        cfg = from_dict(SplitConfig, run_cfg["config"]["split"], where="split")
        sub = split_indices({k: v[labelled] for k, v in rd.groups.items()}, cfg)
        return labelled[sub[split]]
    store = rd.groups["split"][labelled]
    if np.any(store != ""):
        return labelled[normalise_store_split(store) == split]
    raise ValueError(f"split={split!r}: the data are not the run's training data and record no "
                     f"split of their own; pass split=all to evaluate on every labelled window")


def evaluate(model_dir: str | Path, data: Any, config: InferenceConfig | None = None
             ) -> dict[str, Any]:
    """Metrics (spec §5) of a saved model on a store split.

    Parameters
    ----------
    model_dir : path-like
        A fine-tuning run folder or a model folder (``config.json`` + ``model.safetensors``).
    data : path-like | RunData
        A labelled window store.
    config : InferenceConfig | None
        ``split``, ``batch_size``, ``device``, ``progress``.

    Returns
    -------
    dict
        ``task``, ``split``, ``model``, ``data`` and the task's metrics with the confusion
        matrix (classification). A sequence model is scored on every labelled window of the
        store's sequences of its ``sequence_length`` (:mod:`csbrain.engine.sequences`).
    """
    cfg = config or InferenceConfig()
    model_dir = Path(model_dir)
    meta = read_model_config(model_dir)
    rd = open_run_data(data)
    check_compatible(meta, rd.montage, rd.prep_config, model_name=str(model_dir),
                     data_name=rd.source)
    model = load_model(model_dir)
    extra = meta.get("extra") or {}
    task = model_task(model, extra)
    if isinstance(model, CSBrainForSequenceClassification):
        rd = as_sequences(rd, sequence_length_of(model, extra, str(model_dir)))
    labelled = labelled_indices(rd.labels)
    if len(labelled) == 0:
        raise ValueError(f"data {rd.source!r} has no labelled window; evaluation needs labels "
                         f"(prepare with labels.mode=events, recording or trials)")
    run_cfg = read_run_config(model_dir) if (model_dir / RUN_CONFIG).is_file() else None
    idx = _windows_of_split(rd, labelled, run_cfg, cfg.split)
    if len(idx) == 0:
        raise ValueError(f"split={cfg.split!r} of {rd.source!r} holds no labelled window")
    device = resolve_device(cfg.device)
    outputs, y = predict_outputs(model.to(device), Subset(rd.dataset, idx.tolist()),
                                 batch_size=cfg.batch_size, device=device, progress=cfg.progress)
    if outputs.ndim == 3:                   # sequences: every labelled window of them
        o, t = flatten_sequences(torch.from_numpy(outputs), torch.from_numpy(y))
        outputs, y = o.numpy(), t.numpy()
    metrics = compute_metrics(task, y, scores_from_outputs(task, outputs))
    return {"task": task, "split": cfg.split, "model": str(model_dir), "data": rd.source,
            "label_names": extra.get("label_names", []), **metrics}
