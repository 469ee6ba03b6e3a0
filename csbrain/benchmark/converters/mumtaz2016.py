"""Mumtaz 2016 MDD / healthy EEG (figshare "EEG Data New") as distributed: EDF files named
``H S1 EC.edf``, ``H S1 EO.edf``, ``H S1 TASK.edf``, ``MDD S1 EC.edf``, ... (H = healthy control,
MDD = major depressive disorder; EC/EO eyes closed/open resting, TASK = P300 task), 256 Hz.

Facts and their sources:

- the TASK files are not used; label 1 if ``MDD`` is in the name else 0; the 19 channels
  ``EEG Fp1-LE`` ... ``EEG Pz-LE`` (linked-ear reference) in the released order; the split by the
  sorted H and MDD lists, H[:40] + MDD[:42] / H[40:48] + MDD[42:52] / rest: CBraMod
  ``preprocessing/preprocessing_mumtaz.py``;
- 256 Hz, the subject naming ``H S<n>`` / ``MDD S<n>``: the figshare record (Mumtaz 2016).

One recording per EC/EO file with one Segment spanning it (the released code cuts 5-s windows).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from csbrain.benchmark.converters._base import DatasetLayoutError, Segment, SourceRecording
from csbrain.benchmark.converters._edf import read_edf

CHANNELS = ["EEG Fp1-LE", "EEG Fp2-LE", "EEG F3-LE", "EEG F4-LE", "EEG C3-LE", "EEG C4-LE",
            "EEG P3-LE", "EEG P4-LE", "EEG O1-LE", "EEG O2-LE", "EEG F7-LE", "EEG F8-LE",
            "EEG T3-LE", "EEG T4-LE", "EEG T5-LE", "EEG T6-LE", "EEG Fz-LE", "EEG Cz-LE",
            "EEG Pz-LE"]
_NAME = re.compile(r"^(H|MDD) S(\d+) (EC|EO)\.edf$")


def files(raw: Path) -> list[str]:
    """The EC/EO ``.edf`` files (sorted, relative); TASK files are not read."""
    return sorted(p.name for p in Path(raw).glob("*.edf") if _NAME.match(p.name))


def recordings(raw: Path) -> Iterator[SourceRecording]:
    """One recording per file, one whole-recording Segment (0 healthy, 1 MDD)."""
    for rel in files(raw):
        m = _NAME.match(rel)
        data, sfreq, chs = read_edf(Path(raw) / rel)
        missing = [c for c in CHANNELS if c not in chs]
        if missing:
            raise DatasetLayoutError(f"{Path(raw) / rel}: channels {missing} missing; expected "
                                     f"{CHANNELS}")
        yield SourceRecording(name=rel[:-4], subject=f"{m[1]} S{m[2]}", data=data, sfreq=sfreq,
                              ch_names=chs,
                              segments=[Segment(0.0, data.shape[1] / sfreq,
                                                int(m[1] == "MDD"))],
                              meta={"file": rel, "condition": m[3]})
