"""BCI Competition IV 2a in the BNCI Horizon layout: ``A01T.mat`` ... ``A09E.mat``.

Each file holds a 1 x R struct array ``data``; every run has ``X`` (samples x 25: 22 EEG then 3
EOG, in µV), ``trial`` (cue sample of each trial), ``y`` (class 1-4: left hand, right hand, feet,
tongue; the E files carry the true labels) and ``fs`` (250). Runs with no trial are the EOG
calibration runs (three in most sessions, one in A04T) and are skipped. Facts from CBraMod
``preprocessing/preprocessing_bciciv2a.py``: trials are the 2-6 s after the cue, labels ``y - 1``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from csbrain.benchmark.converters._base import DatasetLayoutError, Segment, SourceRecording

CHANNELS = ["Fz", "FC3", "FC1", "FCz", "FC2", "FC4", "C5", "C3", "C1", "Cz", "C2", "C4", "C6",
            "CP3", "CP1", "CPz", "CP2", "CP4", "P1", "Pz", "P2", "POz", "EOG-left",
            "EOG-central", "EOG-right"]
_NAME = re.compile(r"^A0\d[TE]\.mat$")
#: Trials: from 2 s to 6 s after the cue (released code).
TRIAL_START_S, TRIAL_LEN_S = 2.0, 4.0


def files(raw: Path) -> list[str]:
    """The ``A0xT.mat`` / ``A0xE.mat`` files (and anything else, for the listing check)."""
    return sorted(p.relative_to(raw).as_posix() for p in Path(raw).rglob("*") if p.is_file())


def recordings(raw: Path) -> Iterator[SourceRecording]:
    """One recording per session file, runs concatenated; a segment per trial."""
    from scipy.io import loadmat

    for rel in files(raw):
        if not _NAME.match(rel):
            continue
        path = Path(raw) / rel
        try:
            runs = loadmat(path)["data"][0]
        except (KeyError, ValueError, OSError) as err:
            raise DatasetLayoutError(f"{path}: not a BNCI 2a session file with a 'data' "
                                     f"struct array ({err})") from None
        chunks, segs, offset, fs = [], [], 0, None
        for run in runs:
            r = run[0, 0]
            y = np.asarray(r["y"]).ravel()
            if y.size == 0:
                continue
            x = np.asarray(r["X"], dtype=np.float64)
            fs = float(np.asarray(r["fs"]).ravel()[0])
            for t, lab in zip(np.asarray(r["trial"]).ravel(), y):
                segs.append(Segment((offset + int(t)) / fs + TRIAL_START_S, TRIAL_LEN_S,
                                    int(lab) - 1))
            chunks.append(x)
            offset += len(x)
        if not chunks:
            raise DatasetLayoutError(f"{path}: no run with trials")
        data = np.concatenate(chunks).T * 1e-6
        yield SourceRecording(name=rel[:-4], subject=rel[:3], data=data, sfreq=fs,
                              ch_names=CHANNELS[:data.shape[0]], segments=segs,
                              meta={"file": rel, "session": rel[3]})
