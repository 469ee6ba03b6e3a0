"""CHB-MIT Scalp EEG as distributed: ``chbNN/chbNN_MM.edf`` and ``chbNN/chbNN-summary.txt``.

The summary lists per file ``File Name:`` and, for each seizure, ``Seizure [k ]Start Time: N
seconds`` / ``Seizure [k ]End Time: N seconds``. Fixed protocol: seizure spans are labelled 1 and
the rest 0 (windows straddling a boundary are not cut). Released protocol (the recipe's
``seizure_windows``, see :func:`released_windows`): one :class:`Segment` per window of the
released ``process2.py`` rules, each ``window_s`` long, so the pipeline cuts exactly those.
The files store bipolar channels (``FP1-F7``...;
``T8-P8`` twice, which MNE reads as ``T8-P8-0``/``T8-P8-1``: the first is kept under its name).
Facts from CBraMod ``preprocessing/CHB-MIT/process1.py`` and ``process2.py`` (16 bipolar pairs,
10 s segments, seizure label) and ``datasets/chb_dataset.py`` (patient split).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def released_windows(spans: list[tuple[float, float]], n_samples: int, sfreq: float,
                     spec: dict[str, Any]) -> list[Segment]:
    """The released windows and labels of one recording (CBraMod ``process1.py``/``process2.py``).

    Parameters
    ----------
    spans : list of (float, float)
        Seizure ``(start_s, end_s)`` from the summary.
    n_samples : int
        Samples in the recording.
    sfreq : float
        Sampling rate, Hz.
    spec : dict
        ``window_s``, ``stride_s`` (the consecutive windows), ``index_offset`` (samples added to
        ``int(t) * sfreq`` to give a seizure's start/end index), ``extra_pad_s`` and
        ``extra_stride_s`` (the extra seizure windows from ``start - pad`` to ``end + pad``).

    Returns
    -------
    list of Segment
        The consecutive windows, ``window_s`` long (label 1 when a seizure start or end index
        lies strictly inside, else 0), then per seizure the extra windows (label 1), ``window_s``
        long or, where one runs past the recording's end, cut short there as the released
        slice ``signal[:, i:i + 2560]`` is (the released loader then resamples it to a whole
        window: ``segment_filter`` ``fft_window``).
    """
    w, step = int(round(spec["window_s"] * sfreq)), int(round(spec["stride_s"] * sfreq))
    pad = int(round(spec["extra_pad_s"] * sfreq))
    extra = int(round(spec["extra_stride_s"] * sfreq))
    off = int(spec["index_offset"])
    times = [(int(s) * int(sfreq) + off, int(e) * int(sfreq) + off) for s, e in spans]
    segs = []
    for i in range(0, n_samples - w + 1, step):
        label = int(any(i < s < i + w or i < e < i + w for s, e in times))
        segs.append(Segment(i / sfreq, w / sfreq, label))
    for s, e in times:
        for i in range(max(0, s - pad), min(e + pad, n_samples), extra):
            segs.append(Segment(i / sfreq, min(w, n_samples - i) / sfreq, 1))
    return segs


def released_file(name: str, ranges: dict[str, list[list[int]]]) -> bool:
    """Whether the released ``process1.py`` reads file ``name`` (``chbNN_MM``, no extension):
    its patient is one of ``ranges`` and ``MM`` lies in one of the patient's ``[first, last]``
    ranges (the script's reference file and ``start``..``end``; other names, such as
    ``chb02_16+``, are never built by the script)."""
    m = re.fullmatch(r"(chb\d\d)_(\d\d)", name)
    return bool(m) and any(a <= int(m[2]) <= b for a, b in ranges.get(m[1], ()))


def recordings(raw: Path, recipe: dict[str, Any] | None = None) -> Iterator[SourceRecording]:
    """One recording per EDF listed in its patient's summary.

    ``recipe["seizure_windows"]`` (the released variant) switches the segments to
    :func:`released_windows`; without it the seizure spans and the gaps between them.
    ``recipe["released_files"]`` keeps only the files the released script reads
    (:func:`released_file`).
    """
    raw = Path(raw)
    spec = (recipe or {}).get("seizure_windows")
    keep = (recipe or {}).get("released_files")
    for patient in sorted(p for p in raw.iterdir() if re.fullmatch(r"chb\d\d", p.name)):
        summary = patient / f"{patient.name}-summary.txt"
        if not summary.is_file():
            raise DatasetLayoutError(f"{summary}: missing (each chbNN folder has one)")
        table = seizures(summary)
        for edf in sorted(patient.glob("*.edf")):
            if edf.name not in table:
                raise DatasetLayoutError(f"{edf}: not listed in {summary.name}")
            if keep is not None and not released_file(edf.stem, keep):
                continue
            data, sfreq, names = read_edf(edf)
            names = [re.sub(r"-0$", "", n) for n in names]
            if spec:
                segs = released_windows(table[edf.name], data.shape[1], sfreq,
                                        {"window_s": recipe["window_s"], **spec})
            else:
                segs = _segments(table[edf.name], data.shape[1] / sfreq)
            yield SourceRecording(name=edf.stem, subject=patient.name, data=data, sfreq=sfreq,
                                  ch_names=names, segments=segs,
                                  meta={"file": edf.relative_to(raw).as_posix()})
