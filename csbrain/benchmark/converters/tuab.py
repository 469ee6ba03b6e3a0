"""TUH Abnormal EEG (TUAB) as distributed:
``edf/{train,eval}/{normal,abnormal}/01_tcp_ar/<subject>_sNNN_tNNN.edf``.

The folder gives the label (normal 0, abnormal 1) and the official split; the whole recording is
labelled. Facts from CBraMod ``preprocessing/preprocessing_tuab.py`` (16 bipolar pairs of the
``EEG XX-REF`` channels, 10 s windows).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from csbrain.benchmark.converters._base import DatasetLayoutError, Segment, SourceRecording
from csbrain.benchmark.converters._edf import listing, read_edf

LABELS = {"normal": 0, "abnormal": 1}


def files(raw: Path) -> list[str]:
    """The ``.edf`` files."""
    return listing(raw, (".edf",))


def recordings(raw: Path) -> Iterator[SourceRecording]:
    """One recording per EDF, one segment covering it."""
    for rel in files(raw):
        parts = rel.split("/")
        split = next((p for p in parts if p in ("train", "eval")), None)
        label = next((LABELS[p] for p in parts if p in LABELS), None)
        if split is None or label is None:
            raise DatasetLayoutError(f"{rel}: expected edf/{{train,eval}}/{{normal,abnormal}}/"
                                     f".../<name>.edf")
        data, sfreq, names = read_edf(Path(raw) / rel)
        name = Path(rel).stem
        yield SourceRecording(name=name, subject=name.split("_")[0], data=data, sfreq=sfreq,
                              ch_names=names, segments=[Segment(0.0, data.shape[1] / sfreq,
                                                                label)],
                              split=split, meta={"file": rel})
