"""ISRUC-Sleep subgroup I (Khalighi et al. 2016) as distributed (each ``<n>.rar`` extracted):
``<n>/<n>.rec`` (an EDF file with the ``.rec`` extension) and the two scorers' hypnograms
``<n>/<n>_1.txt``, ``<n>/<n>_2.txt`` (one AASM stage per 30-s epoch and line), n = 1 ... 100.

Facts and their sources:

- the layout ``group1/<n>/<n>.rec`` + ``<n>_1.txt`` (the released code reads scorer 1 only), the
  label map ``{0: W -> 0, 1: N1 -> 1, 2: N2 -> 2, 3: N3 -> 3, 5: REM -> 4}``, the six EEG
  channels at stored positions 2-7 (F3-A2, C3-A2, O1-A2, F4-A1, C4-A1, O2-A1), 200 Hz (30-s
  epochs of 6000 samples without resampling), 0.3-35 Hz band-pass + 50 Hz notch, sequences of
  20 epochs, the trailing epochs that do not fill a sequence dropped, no scaling (``to_data_frame``
  µV values): CBraMod ``preprocessing/ISRUC/prepare_ISRUC_1.py`` (which reads ``.rec`` with a
  copy of MNE's EDF reader, ``edf_.py``, patched to accept that extension); the subject split
  1-80 / 81-90 / 91-100: CSBrain ``datasets/isruc_dataset.py``;
- the channel order of the ``.rec`` files (LOC-A2, ROC-A1, F3-A2, C3-A2, O1-A2, F4-A1, C4-A1,
  O2-A1, then EMG/ECG/leg/respiration channels): the ISRUC-Sleep documentation.

One recording per subject, a 30-s Segment per scored epoch (as many as both the signal and the
hypnogram cover).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from csbrain.benchmark.converters._base import DatasetLayoutError, Segment, SourceRecording
from csbrain.benchmark.converters._edf import read_edf

#: AASM stage code in the scorer file -> class (W, N1, N2, N3, REM).
LABELS = {"0": 0, "1": 1, "2": 2, "3": 3, "5": 4}
#: The scorer whose hypnogram the released code reads.
SCORER = 1
EPOCH_S = 30.0
_REC = re.compile(r"^(\d+)/(\d+)\.rec$")


def files(raw: Path) -> list[str]:
    """``<n>/<n>.rec`` and (where present) ``<n>/<n>_1.txt`` of every subject folder (sorted)."""
    raw = Path(raw)
    out = []
    for p in raw.glob("*/*.rec"):
        rel = p.relative_to(raw).as_posix()
        m = _REC.match(rel)
        if m and m[1] == m[2]:
            out.append(rel)
            if (raw / f"{m[1]}/{m[1]}_{SCORER}.txt").is_file():
                out.append(f"{m[1]}/{m[1]}_{SCORER}.txt")
    return sorted(out)


def _read_rec(path: Path):
    """MNE reads EDF only by its extension: read the ``.rec`` through an ``.edf`` link."""
    with tempfile.TemporaryDirectory() as tmp:
        link = Path(tmp) / (path.stem + ".edf")
        try:
            os.symlink(path.resolve(), link)
        except OSError:
            shutil.copyfile(path, link)
        try:
            return read_edf(link)
        except DatasetLayoutError as err:
            raise DatasetLayoutError(str(err).replace(str(link), str(path))) from None


def _hypnogram(path: Path) -> list[int]:
    if not path.is_file():
        raise DatasetLayoutError(f"{path}: scorer {SCORER} hypnogram missing")
    out = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        s = line.strip()
        if not s:
            continue
        if s not in LABELS:
            raise DatasetLayoutError(f"{path}: line {i} holds {s!r}; expected one of "
                                     f"{sorted(LABELS)}")
        out.append(LABELS[s])
    return out


def recordings(raw: Path) -> Iterator[SourceRecording]:
    """One recording per subject (all stored channels), a Segment per scored 30-s epoch."""
    raw = Path(raw)
    for rel in files(raw):
        m = _REC.match(rel)
        if not m:
            continue
        data, sfreq, chs = _read_rec(raw / rel)
        stages = _hypnogram(raw / f"{m[1]}/{m[1]}_{SCORER}.txt")
        n = min(len(stages), int(data.shape[1] // (EPOCH_S * sfreq)))
        segs = [Segment(k * EPOCH_S, EPOCH_S, stages[k]) for k in range(n)]
        yield SourceRecording(name=m[1], subject=m[1], data=data, sfreq=sfreq, ch_names=chs,
                              segments=segs, meta={"file": rel, "scorer": SCORER})
