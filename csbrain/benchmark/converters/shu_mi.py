"""SHU-MI (Shanghai University motor imagery, Ma et al. 2022) as distributed: one MATLAB file per
subject and session, ``sub-001_ses-01_task_motorimagery_eeg.mat`` ... ``sub-025_ses-05_...``.

Each file holds ``data`` (trials x 32 channels x 1000 samples: 4-s trials at 250 Hz, µV) and
``labels`` (1 x trials, 1 = left hand, 2 = right hand).

Facts and their sources:

- keys ``data`` / ``labels``, the trial shape, 250 Hz (1000 samples resampled to 800 = 4 s at
  200 Hz) and the label map ``labels - 1``: CBraMod ``preprocessing/preprocessing_shu.py``; its
  split is by the sorted file list, files[:75] / [75:100] / [100:], i.e. subjects 1-15 / 16-20 /
  21-25 (5 sessions each); CSBrain ``datasets/shu_dataset.py`` keeps a random 30 % of the train
  keys (unseeded) and divides by 100 (the values are µV);
- the channel order (32 electrodes of the 10-20 system, A1/A2 at positions 16/17 counted from 0):
  the dataset's description (Ma et al., Scientific Data 9:531, 2022); third-party loaders of the
  ``.mat`` files list the same order (the files themselves carry no channel names).

The converter concatenates the trials of a file into one recording with one Segment per trial.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from csbrain.benchmark.converters._base import DatasetLayoutError, Segment, SourceRecording

CHANNELS = ["Fp1", "Fp2", "Fz", "F3", "F4", "F7", "F8", "FC1", "FC2", "FC5", "FC6", "Cz", "C3",
            "C4", "T3", "T4", "A1", "A2", "CP1", "CP2", "CP5", "CP6", "Pz", "P3", "P4", "T5",
            "T6", "PO3", "PO4", "Oz", "O1", "O2"]
SFREQ = 250.0
_NAME = re.compile(r"^sub-(\d{3})_ses-(\d{2})_task_motorimagery_eeg\.mat$")


def files(raw: Path) -> list[str]:
    """The subject/session ``.mat`` files under ``raw`` (sorted, relative)."""
    return sorted(p.name for p in Path(raw).glob("*.mat") if _NAME.match(p.name))


def recordings(raw: Path) -> Iterator[SourceRecording]:
    """One recording per file (trials concatenated), a Segment per 4-s trial."""
    from scipy.io import loadmat

    for rel in files(raw):
        path = Path(raw) / rel
        try:
            mat = loadmat(path)
            x = np.asarray(mat["data"], dtype=np.float64)
            y = np.asarray(mat["labels"]).ravel().astype(int)
        except (KeyError, ValueError, OSError) as err:
            raise DatasetLayoutError(f"{path}: not an SHU-MI file with 'data' and 'labels' "
                                     f"({err})") from None
        if x.ndim != 3 or x.shape[1] != len(CHANNELS) or len(y) != len(x):
            raise DatasetLayoutError(
                f"{path}: 'data' of shape {x.shape} with {len(y)} labels; expected "
                f"(trials, {len(CHANNELS)}, samples) and one label per trial")
        if not set(np.unique(y)) <= {1, 2}:
            raise DatasetLayoutError(f"{path}: labels {sorted(set(y))}; expected 1 or 2")
        n_t = x.shape[2]
        segs = [Segment(i * n_t / SFREQ, n_t / SFREQ, int(lab) - 1) for i, lab in enumerate(y)]
        data = np.concatenate(list(x), axis=1) * 1e-6
        m = _NAME.match(rel)
        yield SourceRecording(name=rel[:-4], subject=f"sub-{m[1]}", data=data, sfreq=SFREQ,
                              ch_names=list(CHANNELS), segments=segs,
                              meta={"file": rel, "session": m[2]})
