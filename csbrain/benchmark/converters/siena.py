"""Siena Scalp EEG as distributed: ``PNxx/PNxx-k.edf`` and ``PNxx/Seizures-list-PNxx.txt``.

A seizure list gives per seizure ``File name:``, ``Registration start time:``, ``Seizure start
time:`` (or ``Start time:``) and ``Seizure end time:`` (or ``End time:``) as ``hh.mm.ss`` clock
times; offsets are taken from the registration start (a time before it is on the next day). The
lists spell some names ``PNO6`` for ``PN06``. Seizure spans are labelled 1, the rest 0. Facts
from CSBrain ``preprocessing/Siena/data_process.py`` (29 channels, 0.1-75 Hz, notch 50, 10 s,
seizure times) and ``json_generate.py`` (PN00-12 train with a 20 % validation part, seed 42;
PN13-17 test).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from csbrain.benchmark.converters._base import DatasetLayoutError, SourceRecording
from csbrain.benchmark.converters._edf import listing, read_edf
from csbrain.benchmark.converters.chbmit import _segments


def files(raw: Path) -> list[str]:
    """The ``.edf`` files and the seizure lists."""
    return listing(raw, (".edf", ".txt"))


def _clock(text: str) -> float:
    h, m, s = (int(v) for v in re.findall(r"\d+", text)[:3])
    return h * 3600.0 + m * 60.0 + s


def seizures(path: Path) -> dict[str, list[tuple[float, float]]]:
    """``{file name: [(start_s, end_s), ...]}`` (offsets from the registration start)."""
    out: dict[str, list[tuple[float, float]]] = {}
    name = reg = start = None
    for line in path.read_text("latin-1").splitlines():
        key, _, value = (p.strip() for p in line.partition(":"))
        k = key.lower()
        if k == "file name":
            name = re.sub(r"^PNO", "PN0", value, flags=re.I)
            out.setdefault(name, [])
        elif k == "registration start time":
            reg = _clock(value)
        elif k in ("seizure start time", "start time"):
            start = _clock(value)
        elif k in ("seizure end time", "end time"):
            if name is None or reg is None or start is None:
                raise DatasetLayoutError(f"{path}: seizure end before its file name, "
                                         f"registration start or seizure start")
            s, e = ((t - reg) % 86400.0 for t in (start, _clock(value)))
            out[name].append((s, e))
            start = None
    return out


def recordings(raw: Path) -> Iterator[SourceRecording]:
    """One recording per EDF."""
    raw = Path(raw)
    for patient in sorted(p for p in raw.iterdir() if re.fullmatch(r"PN\d\d", p.name)):
        lists = sorted(patient.glob("Seizures-list-*.txt"))
        if not lists:
            raise DatasetLayoutError(f"{patient}: no Seizures-list-{patient.name}.txt")
        table = seizures(lists[0])
        for edf in sorted(patient.glob("*.edf")):
            data, sfreq, names = read_edf(edf)
            yield SourceRecording(name=edf.stem, subject=patient.name, data=data, sfreq=sfreq,
                                  ch_names=names,
                                  segments=_segments(table.get(edf.name, []),
                                                     data.shape[1] / sfreq),
                                  meta={"file": edf.relative_to(raw).as_posix()})
