"""SEED-VIG (Zheng & Lu 2017, BCMI SJTU) as distributed: ``Raw_Data/<n>_<date>_<noon|night>.mat``
(23 recordings of 21 subjects) with the struct ``EEG`` (first field ``data``: samples x 17, µV, at
200 Hz) and ``perclos_labels/<same name>.mat`` with ``perclos`` (885 x 1: the PERCLOS vigilance
index of each 8-s segment of the ~118-min recording).

Facts and their sources:

- the two folders with equally named files, ``['EEG'][0][0][0]`` (the first struct field)
  reshaped to (885, 8, 200, 17) (so 200 Hz, no resampling, 17 channels in columns), ``perclos``
  as the regression target of each 8-s segment, and the split by the sorted file list [:15] /
  [15:19] / [19:23]: CBraMod ``preprocessing/preprocessing_seedvig.py``; CSBrain
  ``datasets/seedvig_dataset.py`` divides by 100 (µV);
- the 17 channels (temporal: FT7, FT8, T7, T8, TP7, TP8; posterior: CP1, CP2, P1, PZ, P2, PO3,
  POZ, PO4, O1, OZ, O2) and the file naming: the SEED-VIG documentation.

One recording per file, a Segment per 8-s PERCLOS value (float label).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from csbrain.benchmark.converters._base import DatasetLayoutError, Segment, SourceRecording

CHANNELS = ["FT7", "FT8", "T7", "T8", "TP7", "TP8", "CP1", "CP2", "P1", "PZ", "P2", "PO3", "POZ",
            "PO4", "O1", "OZ", "O2"]
SFREQ = 200.0
SEGMENT_S = 8.0
_NAME = re.compile(r"^(\d+)_\d{8}_(noon|night)(_\d+)?\.mat$")


def files(raw: Path) -> list[str]:
    """``Raw_Data/<name>.mat`` and ``perclos_labels/<name>.mat`` (sorted, relative)."""
    raw = Path(raw)
    return sorted(p.relative_to(raw).as_posix() for d in ("Raw_Data", "perclos_labels")
                  for p in (raw / d).glob("*.mat") if _NAME.match(p.name))


def recordings(raw: Path) -> Iterator[SourceRecording]:
    """One recording per file, a Segment (float PERCLOS) per 8-s segment."""
    from scipy.io import loadmat

    raw = Path(raw)
    for rel in files(raw):
        if not rel.startswith("Raw_Data/"):
            continue
        name = rel.split("/")[1]
        path, lab_path = raw / rel, raw / "perclos_labels" / name
        try:
            x = np.asarray(loadmat(path)["EEG"][0][0][0], dtype=np.float64)
        except (KeyError, IndexError, ValueError, OSError) as err:
            raise DatasetLayoutError(f"{path}: not a SEED-VIG file with an 'EEG' struct whose "
                                     f"first field is the data ({err})") from None
        if not lab_path.is_file():
            raise DatasetLayoutError(f"{lab_path}: missing (the PERCLOS labels of {path})")
        try:
            y = np.asarray(loadmat(lab_path)["perclos"], dtype=np.float64).ravel()
        except (KeyError, ValueError, OSError) as err:
            raise DatasetLayoutError(f"{lab_path}: no 'perclos' array ({err})") from None
        if x.ndim != 2 or x.shape[1] != len(CHANNELS):
            raise DatasetLayoutError(f"{path}: EEG data of shape {x.shape}; expected "
                                     f"(samples, {len(CHANNELS)})")
        if len(y) * SEGMENT_S * SFREQ > x.shape[0]:
            raise DatasetLayoutError(f"{lab_path}: {len(y)} PERCLOS values need "
                                     f"{len(y) * SEGMENT_S:.0f} s; {path} holds "
                                     f"{x.shape[0] / SFREQ:.0f} s")
        segs = [Segment(i * SEGMENT_S, SEGMENT_S, float(v)) for i, v in enumerate(y)]
        yield SourceRecording(name=name[:-4], subject=_NAME.match(name)[1], data=x.T * 1e-6,
                              sfreq=SFREQ, ch_names=list(CHANNELS), segments=segs,
                              meta={"file": rel})
