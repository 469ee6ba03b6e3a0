"""CHB-MIT Scalp EEG as distributed: ``chbNN/chbNN_MM.edf`` and ``chbNN/chbNN-summary.txt``.

The summary lists per file ``File Name:`` and, for each seizure, ``Seizure [k ]Start Time: N
seconds`` / ``Seizure [k ]End Time: N seconds``. Seizure spans are labelled 1 and the rest 0
(windows straddling a boundary are not cut). The files store bipolar channels (``FP1-F7``...;
``T8-P8`` twice, which MNE reads as ``T8-P8-0``/``T8-P8-1``: the first is kept under its name).
Facts from CBraMod ``preprocessing/CHB-MIT/process1.py`` and ``process2.py`` (16 bipolar pairs,
10 s segments, seizure label) and ``datasets/chb_dataset.py`` (patient split).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from csbrain.benchmark.converters._base import DatasetLayoutError, Segment, SourceRecording
from csbrain.benchmark.converters._edf import listing, read_edf

_START = re.compile(r"^Seizure(?: \d+)? Start Time:\s*(\d+(?:\.\d+)?)\s*seconds", re.I)
_END = re.compile(r"^Seizure(?: \d+)? End Time:\s*(\d+(?:\.\d+)?)\s*seconds", re.I)


def files(raw: Path) -> list[str]:
    """The ``.edf`` files and the ``-summary.txt`` files."""
    return listing(raw, (".edf", "-summary.txt"))


def seizures(summary: Path) -> dict[str, list[tuple[float, float]]]:
    """``{file name: [(start_s, end_s), ...]}`` from a ``chbNN-summary.txt``."""
    out: dict[str, list[tuple[float, float]]] = {}
    current, start = None, None
    for line in summary.read_text("latin-1").splitlines():
        line = line.strip()
        if line.startswith("File Name:"):
            current = line.split(":", 1)[1].strip()
            out[current] = []
        elif (m := _START.match(line)):
            start = float(m.group(1))
        elif (m := _END.match(line)):
            if current is None or start is None:
                raise DatasetLayoutError(f"{summary}: seizure end without file or start: "
                                         f"{line!r}")
            out[current].append((start, float(m.group(1))))
            start = None
    return out


def _segments(spans: list[tuple[float, float]], total: float) -> list[Segment]:
    segs, t = [], 0.0
    for s, e in sorted(spans):
        if s > t:
            segs.append(Segment(t, s - t, 0))
        segs.append(Segment(s, e - s, 1))
        t = e
    if total > t:
        segs.append(Segment(t, total - t, 0))
    return segs


def recordings(raw: Path) -> Iterator[SourceRecording]:
    """One recording per EDF listed in its patient's summary."""
    raw = Path(raw)
    for patient in sorted(p for p in raw.iterdir() if re.fullmatch(r"chb\d\d", p.name)):
        summary = patient / f"{patient.name}-summary.txt"
        if not summary.is_file():
            raise DatasetLayoutError(f"{summary}: missing (each chbNN folder has one)")
        table = seizures(summary)
        for edf in sorted(patient.glob("*.edf")):
            if edf.name not in table:
                raise DatasetLayoutError(f"{edf}: not listed in {summary.name}")
            data, sfreq, names = read_edf(edf)
            names = [re.sub(r"-0$", "", n) for n in names]
            yield SourceRecording(name=edf.stem, subject=patient.name, data=data, sfreq=sfreq,
                                  ch_names=names,
                                  segments=_segments(table[edf.name], data.shape[1] / sfreq),
                                  meta={"file": edf.relative_to(raw).as_posix()})
