"""Batched forward passes over a dataset or windows in memory: outputs and token embeddings
(:func:`csbrain.engine.metrics.scores_from_outputs` turns outputs into probabilities)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

logger = logging.getLogger(__name__)

__all__ = ["predict_outputs", "predict_windows", "embed_dataset"]


def _loop(fn: Callable[[torch.Tensor], torch.Tensor], dataset: Dataset, batch_size: int,
          device: torch.device | str, progress: bool, desc: str) -> tuple[np.ndarray, np.ndarray]:
    from tqdm.auto import tqdm

    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    outs, ys = [], []
    with torch.no_grad():
        for batch in tqdm(loader, desc=desc, unit="batch", disable=not progress, leave=False):
            x, y = batch[0], batch[1]
            outs.append(fn(x.to(device)).float().cpu().numpy())
            ys.append(np.asarray(y))
    if not outs:
        raise ValueError("the dataset is empty; nothing to predict")
    return np.concatenate(outs), np.concatenate(ys)


def predict_outputs(model: torch.nn.Module, dataset: Dataset, *, batch_size: int = 64,
                    device: torch.device | str = "cpu", progress: bool = False
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Run a task model (eval mode, no grad) over ``dataset``.

    Parameters
    ----------
    model : torch.nn.Module
        :class:`~csbrain.models.CSBrainForClassification` or ``ForRegression``.
    dataset : Dataset
        Items ``(x (C, P, 200), y, ...)``.
    batch_size : int
    device : torch.device | str
    progress : bool
        tqdm bar.

    Returns
    -------
    outputs : ndarray, shape (n, n_outputs)
        Logits or regression outputs, float32.
    y : ndarray, shape (n,)
        The dataset's labels.
    """
    was_training = model.training
    model.eval()
    try:
        return _loop(model, dataset, batch_size, device, progress, "predict")
    finally:
        model.train(was_training)


def predict_windows(model: torch.nn.Module, x: np.ndarray, *, batch_size: int = 64,
                    device: torch.device | str = "cpu", progress: bool = False) -> np.ndarray:
    """Outputs of a task model on windows held in memory (see :func:`predict_outputs`).

    Parameters
    ----------
    model : torch.nn.Module
    x : ndarray, shape (n, C, P, 200)
        Windows in model units, channels in the model's input order.

    Returns
    -------
    outputs : ndarray, shape (n, n_outputs)
    """
    x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    dataset = TensorDataset(x, torch.zeros(len(x)))
    return predict_outputs(model, dataset, batch_size=batch_size, device=device,
                           progress=progress)[0]


def embed_dataset(model: torch.nn.Module, dataset: Dataset, *, pooled: bool = True,
                  batch_size: int = 64, device: torch.device | str = "cpu",
                  progress: bool = False) -> np.ndarray:
    """Backbone tokens of every window.

    Parameters
    ----------
    model : torch.nn.Module
        Any csbrain model (its ``backbone`` is used) or a bare :class:`~csbrain.models.CSBrain`.
    dataset : Dataset
    pooled : bool
        True: the mean over channels and patches, ``(n, D)``; False: all tokens
        ``(n, C, P, D)`` in the model's sorted channel order.

    Returns
    -------
    ndarray, float32
    """
    backbone = getattr(model, "backbone", model)
    was_training = backbone.training
    backbone.eval()

    def fn(x: torch.Tensor) -> torch.Tensor:
        h = backbone(x)
        return h.mean(dim=(1, 2)) if pooled else h

    try:
        return _loop(fn, dataset, batch_size, device, progress, "embed")[0]
    finally:
        backbone.train(was_training)
