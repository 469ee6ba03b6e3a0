"""Sequences of consecutive windows, for models that label every window of a sequence
(:class:`~csbrain.models.CSBrainForSequenceClassification`, the released ISRUC protocol).

:func:`sequence_index` cuts each recording's windows into runs without gaps (consecutive
starts one window step apart) and each run into non-overlapping sequences of ``length``
windows; the windows after the last full sequence of a run are dropped, as the released ISRUC
preprocessing drops the epochs that do not fill a 20-epoch sequence. :func:`as_sequences` turns a
:class:`~csbrain.engine.rundata.RunData` of windows into one of sequences: items
``(x (L, C, P, 200), labels (L,))``, labels ``(n, L)``, groups of the first window.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from csbrain._checks import check_int
from csbrain.data.store import UNLABELLED
from csbrain.engine.rundata import RunData

logger = logging.getLogger(__name__)

__all__ = ["sequence_index", "SequenceDataset", "as_sequences", "flatten_sequences",
           "prediction_pieces", "sequence_forward"]


def _step(starts: np.ndarray) -> int | None:
    """The usual step between consecutive starts of one recording (smallest of the most
    frequent positive differences); None for a single window."""
    d = np.diff(starts)
    d = d[d > 0]
    if not len(d):
        return None
    values, counts = np.unique(d, return_counts=True)
    return int(values[counts == counts.max()].min())


def sequence_index(recording: np.ndarray, starts: np.ndarray | None, length: int
                   ) -> tuple[np.ndarray, int]:
    """Window indices of every sequence.

    Parameters
    ----------
    recording : ndarray, shape (n,)
        Recording of every window (windows of a recording are stored in time order).
    starts : ndarray of int, shape (n,) | None
        Window starts; None: the windows of a recording are consecutive.
    length : int
        Windows per sequence.

    Returns
    -------
    index : ndarray of int64, shape (n_sequences, length)
    dropped : int
        Windows in no sequence (the tail of each gap-free run).
    """
    check_int("length", length, min_value=1)
    recording = np.asarray(recording)
    n = len(recording)
    new_rec = np.r_[True, recording[1:] != recording[:-1]] if n else np.zeros(0, bool)
    breaks = new_rec.copy()
    if starts is not None and n:
        starts = np.asarray(starts, dtype=np.int64)
        for a, b in _bounds(new_rec):
            step = _step(starts[a:b])
            if step is not None:
                breaks[a + 1:b] |= np.diff(starts[a:b]) != step
    out = []
    for a, b in _bounds(breaks):
        k = (b - a) // length
        out.extend(np.arange(a, a + k * length).reshape(k, length))
    index = np.asarray(out, dtype=np.int64).reshape(-1, length)
    return index, n - index.size


def _bounds(starts_of_runs: np.ndarray) -> list[tuple[int, int]]:
    first = np.flatnonzero(starts_of_runs)
    return list(zip(first.tolist(), np.r_[first[1:], len(starts_of_runs)].tolist()))


class SequenceDataset(Dataset):
    """Items ``(x (L, C, P, 200) float32, labels (L,))`` of a window dataset.

    Parameters
    ----------
    windows : Dataset
        Items ``(x (C, P, 200), label, ...)``; its ``__getitems__`` is used when it has one
        (a store reads each sequence as one slice).
    index : ndarray of int, shape (n, L)
        Window indices of each sequence (:func:`sequence_index`).
    labels : ndarray, shape (n_windows,)
        Per-window labels (those of the :class:`RunData`, which may differ from the
        dataset's: a benchmark variant marks dropped windows unlabelled).
    """

    def __init__(self, windows: Dataset, index: np.ndarray, labels: np.ndarray) -> None:
        self.windows, self.index = windows, np.asarray(index, dtype=np.int64)
        y = np.asarray(labels)
        self.labels = torch.from_numpy(y.astype(np.float32 if y.dtype.kind == "f" else np.int64))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx: Sequence[int] = self.index[int(k)].tolist()
        get_many = getattr(self.windows, "__getitems__", None)
        items = get_many(idx) if get_many else [self.windows[i] for i in idx]
        return torch.stack([item[0] for item in items]), self.labels[idx]


def as_sequences(rd: RunData, length: int) -> RunData:
    """The sequences of ``length`` consecutive windows of ``rd`` (see the module docstring).

    Parameters
    ----------
    rd : RunData
        Windows; a sequence stays within one recording and subject; a store's window starts
        (``dataset.starts``) mark gaps, else the windows of a recording are taken as
        consecutive.
    length : int

    Returns
    -------
    RunData
        ``labels`` ``(n, length)``; ``groups`` of each sequence's first window;
        ``fingerprint`` with ``sequence_length``.

    Raises
    ------
    ValueError
        No recording has ``length`` consecutive windows.
    """
    starts = getattr(rd.dataset, "starts", None)
    # a recording of one subject: windows in memory may carry no recording id
    key = np.array([f"{r}\x00{s}" for r, s in zip(rd.groups["recording"],
                                                  rd.groups["subject"])], dtype=object)
    index, dropped = sequence_index(key, starts, length)
    if not len(index):
        raise ValueError(f"sequence_length={length}: no recording of {rd.source!r} has "
                         f"{length} consecutive windows; choose a shorter sequence_length or "
                         f"data with longer recordings")
    if dropped:
        logger.info("%d of %d windows fill no sequence of %d (the tail of a recording or of a "
                    "run before a gap) and are left out", dropped, len(rd), length)
    first = index[:, 0]
    labels = np.asarray(rd.labels)
    groups = {k: np.asarray(v)[first] for k, v in rd.groups.items()}
    return dataclasses.replace(
        rd, dataset=SequenceDataset(rd.dataset, index, labels), labels=labels[index],
        groups=groups, fingerprint={**rd.fingerprint, "sequence_length": int(length)})


def flatten_sequences(out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequence outputs ``(B, L, K)`` and labels ``(B, L)`` as the ``(N, K)`` outputs and
    ``(N,)`` labels of their labelled windows (:data:`~csbrain.data.store.UNLABELLED` or NaN
    marks an unlabelled one, as for :func:`~csbrain.engine.rundata.labelled_indices`): what
    the sequence loss and metrics are taken over."""
    if y.shape != out.shape[:2]:
        raise ValueError(f"sequence outputs of shape {tuple(out.shape)} need labels of shape "
                         f"{tuple(out.shape[:2])}; got {tuple(y.shape)}")
    out, y = out.reshape(-1, out.shape[-1]), y.reshape(-1)
    known = torch.isfinite(y) if y.is_floating_point() else y != UNLABELLED
    return out[known], y[known]


def prediction_pieces(starts: np.ndarray | None, n: int, length: int) -> list[np.ndarray]:
    """Window indices of the sequences a prediction reads: every window once, in order, runs
    without gaps (see :func:`sequence_index`) cut into ``length`` windows, the last piece of a
    run shorter.

    Parameters
    ----------
    starts : ndarray of int, shape (n,) | None
        Window starts of one recording (None: consecutive).
    n : int
        Number of windows.
    length : int

    Returns
    -------
    list of ndarray of int64
    """
    breaks = np.zeros(n, dtype=bool)
    if n:
        breaks[0] = True
    if starts is not None and n > 1:
        starts = np.asarray(starts, dtype=np.int64)
        step = _step(starts)
        if step is not None:
            breaks[1:] = np.diff(starts) != step
    pieces = []
    for a, b in _bounds(breaks):
        pieces += [np.arange(i, min(i + length, b)) for i in range(a, b, length)]
    return pieces


def sequence_forward(model: torch.nn.Module, length: int, batch_size: int = 64
                     ) -> Callable[..., torch.Tensor]:
    """A function of one recording's windows ``(n, C, P, S)`` (and their starts) -> per-window
    outputs ``(n, K)`` for a sequence model: the windows are read in the sequences of
    :func:`prediction_pieces` (gaps respected, the last piece of a run shorter: the sequence
    encoder takes any length), ``batch_size`` sequences of one length per forward pass. Used to
    predict recordings window by window."""
    check_int("length", length, min_value=1)

    def fn(x: torch.Tensor, starts: np.ndarray | None = None) -> torch.Tensor:
        pieces = prediction_pieces(starts, len(x), length)
        out: torch.Tensor | None = None
        by_length: dict[int, list[np.ndarray]] = {}
        for p in pieces:
            by_length.setdefault(len(p), []).append(p)
        for group in by_length.values():
            for i in range(0, len(group), batch_size):
                idx = np.stack(group[i:i + batch_size])                  # (b, L)
                y = model(x[torch.from_numpy(idx).to(x.device)])          # (b, L, K)
                if out is None:
                    out = y.new_empty((len(x), y.shape[-1]))
                out[torch.from_numpy(idx.reshape(-1)).to(x.device)] = y.reshape(-1, y.shape[-1])
        if out is None:
            raise ValueError("no window to predict")
        return out

    return fn
