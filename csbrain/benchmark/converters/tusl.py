"""TUH EEG Slowing (TUSL) as distributed: ``edf/<subject>/.../<name>.edf`` with a ``.csv``
label file beside each EDF (TUH ``csv_v1.0.0``: ``#`` header lines, then
``channel,start_time,stop_time,label,confidence``; labels ``bckg``, ``seiz``, ``slow``).

A span marked on several channels is one segment. Facts from CSBrain
``preprocessing/TUSL/data_process.py`` (19 channels renamed from ``EEG XX-REF``, 0.1-75 Hz,
notch 60, 10 s slices of each labelled span).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from csbrain.benchmark.converters._base import DatasetLayoutError, Segment, SourceRecording
from csbrain.benchmark.converters._edf import listing, read_edf

LABELS = {"bckg": 0, "seiz": 1, "slow": 2}


def files(raw: Path) -> list[str]:
    """The ``.edf`` and ``.csv`` files."""
    return listing(raw, (".edf", ".csv"))


def _spans(path: Path) -> list[Segment]:
    if not path.is_file():
        raise DatasetLayoutError(f"{path}: the label file of {path.stem}.edf is missing")
    lines = [ln for ln in path.read_text("utf-8").splitlines() if ln and not ln.startswith("#")]
    rows = list(csv.DictReader(lines))
    if not rows or not {"start_time", "stop_time", "label"} <= set(rows[0]):
        raise DatasetLayoutError(f"{path}: expected a header channel,start_time,stop_time,"
                                 f"label,confidence")
    seen = {}
    for r in rows:
        lab = r["label"].strip().lower()
        if lab not in LABELS:
            raise DatasetLayoutError(f"{path}: label {lab!r} is not one of {sorted(LABELS)}")
        key = (float(r["start_time"]), float(r["stop_time"]))
        seen.setdefault(key, LABELS[lab])
    return [Segment(s, e - s, lab) for (s, e), lab in sorted(seen.items())]


def recordings(raw: Path) -> Iterator[SourceRecording]:
    """One recording per EDF."""
    for rel in files(raw):
        if not rel.endswith(".edf"):
            continue
        segs = _spans(Path(raw) / (rel[:-4] + ".csv"))
        data, sfreq, names = read_edf(Path(raw) / rel)
        name = Path(rel).stem
        yield SourceRecording(name=name, subject=name.split("_")[0], data=data, sfreq=sfreq,
                              ch_names=names, segments=segs, meta={"file": rel})
