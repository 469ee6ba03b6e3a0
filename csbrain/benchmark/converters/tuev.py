"""TUH EEG Events (TUEV) as distributed: ``edf/{train,eval}/<subject>/<name>.edf`` + ``.rec``.

A ``.rec`` file has one row per annotated event, ``channel,start_s,end_s,label`` with labels 1-6
(spsw, gped, pled, eyem, artf, bckg). Facts from CBraMod ``preprocessing/preprocessing_tuev.py``:
each event becomes a 5 s window from 2 s before its start to 2 s after its end (events are 1 s),
one per row (an event marked on several channels gives several windows), labels ``label - 1``;
the ``train``/``eval`` folders are the official split. (The released code pads the signal by
repeating it, so events near the ends wrap around; here such windows are dropped.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from csbrain.benchmark.converters._base import DatasetLayoutError, Segment, SourceRecording
from csbrain.benchmark.converters._edf import listing, read_edf

#: Seconds added before and after an event (released).
PAD_S = 2.0


def files(raw: Path) -> list[str]:
    """The ``.edf`` and ``.rec`` files."""
    return listing(raw, (".edf", ".rec"))


def recordings(raw: Path) -> Iterator[SourceRecording]:
    """One recording per EDF; a segment per ``.rec`` row."""
    for rel in files(raw):
        if not rel.endswith(".edf"):
            continue
        parts = rel.split("/")
        if len(parts) < 3 or parts[-3] not in ("train", "eval"):
            raise DatasetLayoutError(f"{rel}: expected edf/train/<subject>/<name>.edf or "
                                     f"edf/eval/<subject>/<name>.edf")
        rec_path = Path(raw) / (rel[:-4] + ".rec")
        if not rec_path.is_file():
            raise DatasetLayoutError(f"{rel}: its label file {rec_path.name} is missing")
        rows = np.atleast_2d(np.loadtxt(rec_path, delimiter=",", ndmin=2))
        if rows.size and rows.shape[1] != 4:
            raise DatasetLayoutError(f"{rec_path}: expected rows channel,start,end,label")
        data, sfreq, names = read_edf(Path(raw) / rel)
        segs = [Segment(float(s) - PAD_S, float(e) - float(s) + 2 * PAD_S, int(lab) - 1)
                for _, s, e, lab in rows]
        name = Path(rel).stem
        yield SourceRecording(name=name, subject=parts[-2], data=data, sfreq=sfreq,
                              ch_names=names, segments=segs, split=parts[-3],
                              meta={"file": rel})
