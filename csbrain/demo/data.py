"""The demo's data: the pretraining corpus and each task's train/val/test windows.

No window of a task's test split ever enters the pretraining corpus: test windows start after
:data:`~csbrain.demo.plan.HOLDOUT_FROM` of their recording, pretraining windows end before it.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from csbrain import units
from csbrain.data.store import UNLABELLED
from csbrain.demo.plan import HOLDOUT_FROM, DemoTask
from csbrain.engine.rundata import RunData
from csbrain.montage import Montage

logger = logging.getLogger(__name__)


def _base(dataset: str) -> str:
    return dataset.split(":")[0]


def time_fractions(lw) -> tuple[np.ndarray, np.ndarray]:
    """Start and end of each window as fractions of its recording's duration.

    Parameters
    ----------
    lw : csbrain.data.LabelledWindows
        Continuous or event windows (``start`` in samples at 200 Hz).

    Returns
    -------
    start, end : ndarray, shape (n,)
    """
    duration = np.array([lw.duration_s[r] for r in lw.recording]) * units.SFREQ
    length = lw.x.shape[2] * lw.x.shape[3]
    return lw.start / duration, (lw.start + length) / duration


def window_seconds(lw) -> float:
    """Duration of one window of ``lw`` in seconds."""
    return lw.x.shape[2] * units.PATCH_SIZE / units.SFREQ


def covered_hours(lw, keep: np.ndarray) -> float:
    """Hours of recording covered by the windows ``keep`` (overlaps counted once).

    Parameters
    ----------
    lw : csbrain.data.LabelledWindows
        Windows with ``start`` in samples at 200 Hz.
    keep : ndarray of bool, shape (n,)
    """
    length = lw.x.shape[2] * units.PATCH_SIZE
    total = 0
    for rec in np.unique(lw.recording[keep]):
        starts = np.sort(lw.start[keep & (lw.recording == rec)])
        total += np.minimum(np.diff(starts), length).sum() + length
    return float(total) / units.SFREQ / 3600


def pretraining_corpus(sources: dict[str, Any]) -> tuple[list[RunData], list[dict]]:
    """Every channel of every continuous source, windows before the hold-out point only.

    Parameters
    ----------
    sources : dict of str to csbrain.data.LabelledWindows
        Continuous windows per ``load_dataset`` name.

    Returns
    -------
    data : list of RunData
        One per source, on the source's own montage (unlabelled), in ``sources`` order.
    summary : list of dict
        Per source: windows available, windows kept, channels, hours of EEG they cover
        (``hours``), the sum of their durations (``window_hours``, larger when windows
        overlap), the hold-out point and ``last_end``, the latest end of a kept window as a
        fraction of its recording (never after the hold-out point).
    """
    data, summary = [], []
    for name, lw in sources.items():
        _, end = time_fractions(lw)
        keep = end <= HOLDOUT_FROM[_base(name)] + 1e-9
        montage = getattr(lw, "montage", None) or Montage.from_names(list(lw.ch_names))
        data.append(RunData.from_arrays(
            lw.x[keep], np.full(int(keep.sum()), UNLABELLED), montage,
            subject=np.asarray(lw.subject)[keep], recording=np.asarray(lw.recording)[keep]))
        summary.append({"source": name, "channels": len(lw.ch_names),
                        "windows": int(len(keep)), "kept": int(keep.sum()),
                        "hours": round(covered_hours(lw, keep), 3),
                        "window_hours": round(float(window_seconds(lw) * keep.sum()) / 3600, 3),
                        "held_out_from": HOLDOUT_FROM[_base(name)],
                        "last_end": round(float(end[keep].max()), 6) if keep.any() else None})
    return data, summary


def subsample(data: list[RunData], fraction: float, seed: int) -> list[RunData]:
    """A seeded ``fraction`` of the windows of every source (at least one window each).

    Parameters
    ----------
    data : list of RunData
        In-memory sources (:func:`pretraining_corpus`).
    fraction : float
        In (0, 1].
    seed : int
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    out = []
    for rd in data:
        n = len(rd)
        keep = np.sort(rng.permutation(n)[: max(1, int(round(fraction * n)))])
        x = rd.dataset.tensors[0].numpy()[keep]                 # in-memory (from_arrays)
        out.append(RunData.from_arrays(x, np.asarray(rd.labels)[keep], rd.montage,
                                       recording=np.asarray(rd.groups["recording"])[keep]))
    return out


def _val_from(pool: np.ndarray, y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A seeded, class-stratified ``fraction`` of the indices in ``pool``."""
    rng = np.random.default_rng(seed)
    out = []
    for c in np.unique(y[pool]):
        members = pool[y[pool] == c]
        out.append(rng.permutation(members)[: max(1, int(round(fraction * len(members))))])
    return np.concatenate(out)


def task_split(task: DemoTask, lw, *, val_fraction: float, seed: int = 0) -> np.ndarray:
    """Per-window split label ``"train"``, ``"val"``, ``"test"`` or ``""`` (unused).

    The split is fixed (``seed``) across the demo's training seeds.
    """
    n = len(lw.y)
    split = np.full(n, "", dtype=object)
    if task.split == "official":
        pool, test = np.flatnonzero(lw.split == "train"), lw.split == "test"
    else:
        start, end = time_fractions(lw)
        late = start >= HOLDOUT_FROM[_base(task.dataset)] - 1e-9
        if task.split == "cross_subject":
            pool = np.flatnonzero(lw.subject == task.train_subject)
            test = (lw.subject == task.test_subject) & late
        elif task.split == "holdout":
            pool = np.flatnonzero(end <= HOLDOUT_FROM[_base(task.dataset)] + 1e-9)
            test = late
        else:
            raise ValueError(f"task {task.key!r}: split={task.split!r} is not one of "
                             "'cross_subject', 'holdout', 'official'")
    split[pool] = "train"
    split[_val_from(pool, lw.y, val_fraction, seed)] = "val"
    split[test] = "test"
    if not (split == "test").any() or not (split == "train").any():
        raise ValueError(f"task {task.key!r} has an empty train or test split")
    return split
