"""EEG during mental arithmetic tasks (Zyma et al. 2019, PhysioNet) as distributed:
``Subject00_1.edf`` ... ``Subject35_2.edf`` (36 subjects; ``_1`` = rest before the task,
``_2`` = mental arithmetic), EDF at 500 Hz.

Facts and their sources:

- file names, the 20 channels ``EEG Fp1`` ... ``EEG Pz``, ``EEG A2-A1`` (an ``ECG ECG`` channel is
  also stored), the label ``int(name[-5]) - 1`` (0 rest, 1 task) and the split by the sorted file
  list [:56] / [56:64] / [64:] (subjects 0-27 / 28-31 / 32-35): CBraMod
  ``preprocessing/preprocessing_stress.py``;
- 500 Hz, 180-s rest and 60-s task recordings: the PhysioNet page (eegmat 1.0.0).

One recording per file with one Segment spanning it (the released code cuts 5-s windows).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from csbrain.benchmark.converters._base import DatasetLayoutError, Segment, SourceRecording
from csbrain.benchmark.converters._edf import read_edf

_NAME = re.compile(r"^Subject(\d{2})_([12])\.edf$")


def files(raw: Path) -> list[str]:
    """The ``SubjectNN_K.edf`` files (sorted, relative)."""
    return sorted(p.name for p in Path(raw).glob("*.edf") if _NAME.match(p.name))


def recordings(raw: Path) -> Iterator[SourceRecording]:
    """One recording per file, one whole-recording Segment (0 rest, 1 task)."""
    for rel in files(raw):
        m = _NAME.match(rel)
        data, sfreq, chs = read_edf(Path(raw) / rel)
        if not any(c == "EEG Fp1" for c in chs):
            raise DatasetLayoutError(f"{Path(raw) / rel}: channels {chs}; expected 'EEG Fp1' "
                                     "... 'EEG A2-A1'")
        yield SourceRecording(name=rel[:-4], subject=f"Subject{m[1]}", data=data, sfreq=sfreq,
                              ch_names=chs,
                              segments=[Segment(0.0, data.shape[1] / sfreq, int(m[2]) - 1)],
                              meta={"file": rel})
