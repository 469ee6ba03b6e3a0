"""The contract between a dataset converter and the benchmark pipeline.

A converter reads one of the paper's datasets in the layout in which it is distributed (EDF trees
with label files, MATLAB files, per-subject arrays, ...) and yields :class:`SourceRecording`
objects: continuous signals in volts with labelled spans. It does no filtering, resampling,
re-referencing to the recipe's montage or windowing: the benchmark pipeline does these from the
recipe (one place for preprocessing). Bipolar montages (TUEV, TUAB, CHB-MIT) are derived by the
pipeline from the recipe's channel list, so a converter returns the channels as stored.

A converter is a module ``csbrain/benchmark/converters/<recipe name>.py`` that defines

- ``files(raw: Path) -> list[str]``: the relative paths (POSIX, sorted) of the files of the
  dataset copy under ``raw`` that the converter reads; the pipeline compares them with the
  recipe's listing and refuses a copy with missing or extra files;
- ``recordings(raw: Path) -> Iterator[SourceRecording]``: the recordings, one at a time (a
  dataset can be larger than memory), in a deterministic order.

A malformed copy raises :class:`DatasetLayoutError` naming the file and what was expected.

What the split rules read (``csbrain.benchmark.splits``): ``SourceRecording.subject`` (subject
rules, the shipped split files), ``SourceRecording.split`` (official splits: TUH folders,
BCIC2020-3), ``SourceRecording.meta["trial"]`` (SEED-V: the trial number 1-15 of a recording
that holds one trial) and the recording ``name`` (recording-count rules). ``meta["file"]`` (the
relative path) is recorded in the store's manifest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["DatasetLayoutError", "Segment", "SourceRecording"]


class DatasetLayoutError(ValueError):
    """A dataset copy is not laid out as its converter expects (the message names the file)."""


@dataclass(frozen=True)
class Segment:
    """A labelled span of a recording.

    Parameters
    ----------
    onset_s, duration_s : float
        Start and length in seconds from the start of the recording's ``data``.
    label : int or float
        Class index (the recipe's label map already applied) or a regression target.
    """

    onset_s: float
    duration_s: float
    label: int | float


@dataclass
class SourceRecording:
    """One recording as distributed, before any preprocessing.

    Parameters
    ----------
    name : str
        Stable id, unique in the dataset (used by the split files), e.g. ``"A01T"``,
        ``"sub001"`` or ``"aaaaaaaq_s001_t000"``.
    subject : str
        Subject id as the split files name it.
    data : ndarray, shape (n_channels, n_samples)
        The signals in volts (float32 or float64).
    sfreq : float
        Sampling rate of ``data``, Hz.
    ch_names : list of str
        Channel names as stored in the file (length ``n_channels``).
    segments : list of Segment
        Labelled spans from which the pipeline cuts the recipe's windows.
    split : str or None
        ``"train"``, ``"val"`` or ``"test"`` where the distribution itself fixes the split
        (TUH ``train``/``eval`` folders, BCIC2020-3's files); None where the recipe's split
        rule decides.
    meta : dict
        Anything else worth keeping (session, run, file name).
    """

    name: str
    subject: str
    data: np.ndarray
    sfreq: float
    ch_names: list[str]
    segments: list[Segment]
    split: str | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.data.ndim != 2 or self.data.shape[0] != len(self.ch_names):
            raise DatasetLayoutError(
                f"recording {self.name!r}: data of shape {self.data.shape} does not match its "
                f"{len(self.ch_names)} channel names")
