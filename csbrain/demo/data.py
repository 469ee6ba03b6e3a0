"""The demo's data: the pretraining corpus and each task's train/val/test windows.

No window of a task's test split ever enters the pretraining corpus: test windows start after
:data:`~csbrain.demo.plan.HOLDOUT_FROM` of their recording, pretraining windows end before it.
"""

from __future__ import annotations

import logging

import numpy as np

from csbrain import units
from csbrain.demo.plan import HOLDOUT_FROM, PRETRAIN_CHANNELS, DemoTask
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


def pretraining_corpus(sources: dict[str, object]) -> tuple[np.ndarray, Montage, list[dict]]:
    """Concatenate the continuous sources on :data:`PRETRAIN_CHANNELS`, before the holdout.

    Returns
    -------
    x : ndarray, shape (n, 6, P, 200)
    montage : Montage
        The six pretraining channels.
    summary : list of dict
        Per source: windows available, windows kept, hours of EEG they cover (``hours``) and
        the sum of their durations (``window_hours``, larger when windows overlap).
    """
    parts, summary = [], []
    for name, lw in sources.items():
        idx = [lw.ch_names.index(c) for c in PRETRAIN_CHANNELS]
        _, end = time_fractions(lw)
        keep = end <= HOLDOUT_FROM[_base(name)] + 1e-9
        parts.append(lw.x[keep][:, idx])
        summary.append({"source": name, "windows": int(len(keep)), "kept": int(keep.sum()),
                        "hours": round(covered_hours(lw, keep), 3),
                        "window_hours": round(float(window_seconds(lw) * keep.sum()) / 3600, 3),
                        "held_out_from": HOLDOUT_FROM[_base(name)]})
    x = np.concatenate(parts).astype(np.float32)
    return x, Montage.from_names(list(PRETRAIN_CHANNELS)), summary


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
