"""FACED (Chen et al. 2023, Synapse) as distributed: ``Processed_data/sub000.pkl`` ...
``sub122.pkl``, each a pickled array (28 video clips x 32 channels x 7500 samples: 30 s at
250 Hz, µV).

Facts and their sources:

- the folder and file names, the shape (28, 32, 7500) resampled to 6000 samples (30 s at 200 Hz,
  so the stored rate is 250 Hz) and the label of each of the 28 clips
  ``[0,0,0,1,1,1,2,2,2,3,3,3,4,4,4,4,5,5,5,6,6,6,7,7,7,8,8,8]`` (9 emotions: anger, disgust,
  fear, sadness, neutral (4 clips), amusement, inspiration, joy, tenderness): CBraMod
  ``preprocessing/preprocessing_faced.py``; its split is by the sorted file list, files[:80] /
  [80:100] / [100:]; CSBrain ``datasets/faced_dataset.py`` divides by 100 (µV);
- the channel order (32 electrodes, A1/A2 at positions 16/17 counted from 0; T3/T4/T5/T6 are
  T7/T8/P7/P8): the FACED README's lead table of the first recording batch (subjects 1-54;
  the second batch was recorded in another order, A2/A1 last, and the README asks users to
  reorder). That ``Processed_data`` holds every subject in this first-batch order is what the
  project spec (csbrain.md section 5, "A1/A2 at positions 16 and 17") states; not checked
  against a copy.

One recording per subject: the 28 trials concatenated, one 30-s Segment per trial.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from csbrain.benchmark.converters._base import DatasetLayoutError, Segment, SourceRecording

CHANNELS = ["Fp1", "Fp2", "Fz", "F3", "F4", "F7", "F8", "FC1", "FC2", "FC5", "FC6", "Cz", "C3",
            "C4", "T3", "T4", "A1", "A2", "CP1", "CP2", "CP5", "CP6", "Pz", "P3", "P4", "T5",
            "T6", "PO3", "PO4", "Oz", "O1", "O2"]
LABELS = (0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 6, 6, 6, 7, 7, 7, 8, 8, 8)
SFREQ = 250.0
_NAME = re.compile(r"^Processed_data/sub(\d{3})\.pkl$")


def files(raw: Path) -> list[str]:
    """The ``Processed_data/subNNN.pkl`` files (sorted, relative)."""
    raw = Path(raw)
    return sorted(p.relative_to(raw).as_posix() for p in (raw / "Processed_data").glob("*.pkl")
                  if _NAME.match(p.relative_to(raw).as_posix()))


def recordings(raw: Path) -> Iterator[SourceRecording]:
    """One recording per subject, a Segment per clip."""
    for rel in files(raw):
        path = Path(raw) / rel
        try:
            with open(path, "rb") as f:
                x = np.asarray(pickle.load(f), dtype=np.float64)
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as err:
            raise DatasetLayoutError(f"{path}: not a pickled FACED array ({err})") from None
        if x.ndim != 3 or x.shape[:2] != (len(LABELS), len(CHANNELS)):
            raise DatasetLayoutError(f"{path}: array of shape {x.shape}; expected "
                                     f"({len(LABELS)}, {len(CHANNELS)}, samples)")
        n_t = x.shape[2]
        segs = [Segment(i * n_t / SFREQ, n_t / SFREQ, lab) for i, lab in enumerate(LABELS)]
        sub = _NAME.match(rel)[1]
        yield SourceRecording(name=f"sub{sub}", subject=f"sub{sub}",
                              data=np.concatenate(list(x), axis=1) * 1e-6, sfreq=SFREQ,
                              ch_names=list(CHANNELS), segments=segs, meta={"file": rel})
