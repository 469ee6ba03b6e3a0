"""PhysioNet EEG Motor Movement/Imagery as distributed: ``Sxxx/SxxxRyy.edf``, annotations
``T0`` (rest), ``T1``, ``T2`` in the EDF+ files, channel names with trailing dots (``Fc5.``).

Only the imagery runs are read: in runs 04, 08, 12 ``T1``/``T2`` are left/right fist (classes 0,
1), in runs 06, 10, 14 both fists / both feet (classes 2, 3); ``T0`` is not used; each trial is
the 4 s from its onset. Facts from CBraMod ``preprocessing/preprocessing_physio.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from csbrain.benchmark.converters._base import DatasetLayoutError, Segment, SourceRecording
from csbrain.benchmark.converters._edf import read_edf

#: Imagery runs and the class of T1 / T2 in each.
RUNS = {"04": (0, 1), "08": (0, 1), "12": (0, 1), "06": (2, 3), "10": (2, 3), "14": (2, 3)}
TRIAL_S = 4.0
_NAME = re.compile(r"^(S\d{3})/(S\d{3})R(\d\d)\.edf$")


def files(raw: Path) -> list[str]:
    """The imagery-run EDF files (other runs are not read)."""
    out = []
    for p in Path(raw).rglob("*.edf"):
        rel = p.relative_to(raw).as_posix()
        m = _NAME.match(rel)
        if m is None or m.group(3) in RUNS:
            out.append(rel)
    return sorted(out)


def recordings(raw: Path) -> Iterator[SourceRecording]:
    """One recording per imagery run."""
    import mne

    for rel in files(raw):
        m = _NAME.match(rel)
        if m is None or m.group(1) != m.group(2):
            raise DatasetLayoutError(f"{rel}: expected Sxxx/SxxxRyy.edf")
        path = Path(raw) / rel
        data, sfreq, names = read_edf(path)
        ann = mne.read_annotations(path)
        t1, t2 = RUNS[m.group(3)]
        cls = {"T1": t1, "T2": t2}
        segs = [Segment(float(o), TRIAL_S, cls[d]) for o, d in zip(ann.onset, ann.description)
                if d in cls]
        yield SourceRecording(name=path.stem, subject=m.group(1), data=data, sfreq=sfreq,
                              ch_names=names, segments=segs,
                              meta={"file": rel, "run": m.group(3)})
