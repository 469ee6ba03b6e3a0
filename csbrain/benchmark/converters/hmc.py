"""Haaglanden Medisch Centrum sleep staging (HMC) as distributed: ``SNxxx.edf`` (EEG F4-M1,
C4-M1, O2-M1, C3-M2 and other signals) and ``SNxxx_sleepscoring.edf`` (EDF+ annotations
``Sleep stage W|N1|N2|N3|R`` with their 30 s durations; others such as ``Lights off`` ignored).

Facts from CSBrain ``preprocessing/HMC/data_process.py`` (the 4 EEG channels, 0.1-75 Hz, notch
50, labels W N1 N2 N3 R -> 0-4) and ``cross_json_csbrain.py`` (natsorted subjects: 100 / 25 /
rest). The released script reads the scorings from a CSV export; the distributed EDF+ scoring
file carries the same annotations.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from csbrain.benchmark.converters._base import DatasetLayoutError, Segment, SourceRecording
from csbrain.benchmark.converters._edf import listing, read_edf

STAGES = {"Sleep stage W": 0, "Sleep stage N1": 1, "Sleep stage N2": 2, "Sleep stage N3": 3,
          "Sleep stage R": 4}
_NAME = re.compile(r"^SN\d{3}\.edf$")


def files(raw: Path) -> list[str]:
    """The recordings and their scoring files."""
    return listing(raw, (".edf",))


def recordings(raw: Path) -> Iterator[SourceRecording]:
    """One recording per subject."""
    import mne

    for rel in files(raw):
        if not _NAME.match(rel):
            continue
        scoring = Path(raw) / rel.replace(".edf", "_sleepscoring.edf")
        if not scoring.is_file():
            raise DatasetLayoutError(f"{rel}: its scoring file {scoring.name} is missing")
        ann = mne.read_annotations(scoring)
        segs = [Segment(float(o), float(d), STAGES[t.rstrip(",").strip()])
                for o, d, t in zip(ann.onset, ann.duration, ann.description)
                if t.rstrip(",").strip() in STAGES]
        data, sfreq, names = read_edf(Path(raw) / rel)
        yield SourceRecording(name=rel[:-4], subject=rel[:-4], data=data, sfreq=sfreq,
                              ch_names=names, segments=segs, meta={"file": rel})
