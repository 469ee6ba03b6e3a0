"""BCI Competition 2020 track 3 (imagined speech) as distributed: ``Training set/``,
``Validation set/`` and ``Test set/`` with ``Data_Sample01.mat`` ... ``Data_Sample15.mat`` each,
and the test answer sheet ``Track3_Answer Sheet_Test.xlsx``.

- training / validation files (MATLAB v5): struct ``epo_train`` / ``epo_validation`` (BBCI
  toolbox epochs) with ``x`` (samples x 64 channels x trials, µV, 256 Hz; 300 / 50 trials) and
  ``y`` (5 classes x trials, one-hot), ``clab`` the channel names;
- test files (MATLAB v7.3, HDF5): group ``epo_test`` with ``x`` read by h5py as
  (trials x 64 x samples); no labels;
- the answer sheet: for subject j (0-based) the labels (1-5) of its 50 test trials are in sheet
  column 2 + 2j (0-based; C, E, G, ...), rows 4-53.

Facts and their sources: everything above except the field names, from CBraMod
``preprocessing/preprocessing_speech.py`` (it reads struct fields 4 and 5 = ``x``, ``y``, keeps
the last 768 samples (3 s at 256 Hz) of each trial, labels ``argmax(y)`` and ``answer - 1``,
``pd.read_excel(...).head(53).values[2:, 1:][:, 1:30:2]``); the field names ``x``, ``y``,
``clab``, ``fs`` and the five words (hello, help me, stop, thank you, yes): the competition's
track 3 description. The split is the distribution's (train / validation / test folders).

The answer sheet is read with the standard library (``zipfile`` + XML): only its numbers are
needed, and the project does not depend on an xlsx reader (openpyxl).

One recording per file (trials concatenated), a 3-s Segment on the last 768 samples of each trial.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import numpy as np

from csbrain.benchmark.converters._base import DatasetLayoutError, Segment, SourceRecording

SETS = {"train": ("Training set", "epo_train"), "val": ("Validation set", "epo_validation"),
        "test": ("Test set", "epo_test")}
ANSWERS = "Track3_Answer Sheet_Test.xlsx"
SFREQ = 256.0
TRIAL_SAMPLES = 768
_NAME = re.compile(r"^Data_Sample(\d{2})\.mat$")
_NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}


def files(raw: Path) -> list[str]:
    """The 3 x 15 ``.mat`` files and the answer sheet (sorted, relative)."""
    raw = Path(raw)
    out = [f"{folder}/{p.name}" for folder, _ in SETS.values()
           for p in (raw / folder).glob("*.mat") if _NAME.match(p.name)]
    if (raw / ANSWERS).is_file():
        out.append(ANSWERS)
    return sorted(out)


def _cells(path: Path) -> dict[tuple[int, int], float]:
    """Numeric cells ``{(row 1-based, column 0-based): value}`` of the first worksheet."""
    try:
        with zipfile.ZipFile(path) as z:
            sheet = ElementTree.fromstring(z.read("xl/worksheets/sheet1.xml"))
    except (OSError, KeyError, zipfile.BadZipFile, ElementTree.ParseError) as err:
        raise DatasetLayoutError(f"{path}: not an xlsx answer sheet ({err})") from None
    out = {}
    for c in sheet.iterfind(".//m:c", _NS):
        v = c.find("m:v", _NS)
        if v is None or c.get("t") in ("s", "str", "inlineStr", "b", "e"):
            continue
        m = re.match(r"([A-Z]+)(\d+)$", c.get("r", ""))
        col = 0
        for ch in m[1]:
            col = col * 26 + ord(ch) - 64
        out[(int(m[2]), col - 1)] = float(v.text)
    return out


def _test_labels(raw: Path, subject: int, n: int) -> np.ndarray:
    path = raw / ANSWERS
    if not path.is_file():
        raise DatasetLayoutError(f"{path}: answer sheet missing (labels of the test set)")
    cells = _cells(path)
    col = 2 + 2 * (subject - 1)
    try:
        y = np.array([cells[(4 + i, col)] for i in range(n)], dtype=int)
    except KeyError as err:
        raise DatasetLayoutError(f"{path}: no answer for subject {subject} at {err}") from None
    if not set(y) <= set(range(1, 6)):
        raise DatasetLayoutError(f"{path}: answers {sorted(set(y))} of subject {subject}; "
                                 "expected 1-5")
    return y - 1


def _read_v5(path: Path, key: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from scipy.io import loadmat

    try:
        s = loadmat(path)[key][0, 0]
        x = np.asarray(s["x"], dtype=np.float64).transpose(2, 1, 0)
        y = np.argmax(np.asarray(s["y"]), axis=0)
        clab = [str(np.ravel(c)[0]) for c in np.ravel(s["clab"])]
    except (KeyError, ValueError, IndexError, OSError) as err:
        raise DatasetLayoutError(f"{path}: not a track-3 file with a {key!r} struct holding "
                                 f"x, y, clab ({err})") from None
    return x, y, clab


def _read_v73(path: Path) -> np.ndarray:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return np.asarray(f["epo_test"]["x"][:], dtype=np.float64)
    except (KeyError, OSError) as err:
        raise DatasetLayoutError(f"{path}: not a MATLAB v7.3 file with 'epo_test/x' "
                                 f"({err})") from None


def recordings(raw: Path) -> Iterator[SourceRecording]:
    """One recording per file; split from its folder; a Segment per trial's last 3 s."""
    raw = Path(raw)
    listed = set(files(raw))
    for split, (folder, key) in SETS.items():
        for rel in sorted(f for f in listed if f.startswith(folder + "/")):
            path, name = raw / rel, rel.split("/")[1]
            subject = int(_NAME.match(name)[1])
            if split == "test":
                train = raw / SETS["train"][0] / name
                if not train.is_file():
                    raise DatasetLayoutError(f"{train}: missing (its 'clab' names the channels "
                                             f"of {path})")
                clab = _read_v5(train, SETS["train"][1])[2]
                x = _read_v73(path)
                y = _test_labels(raw, subject, len(x))
            else:
                x, y, clab = _read_v5(path, key)
            if x.ndim != 3 or x.shape[1] != len(clab) or x.shape[2] < TRIAL_SAMPLES:
                raise DatasetLayoutError(f"{path}: trials of shape {x.shape}; expected (trials, "
                                         f"{len(clab)}, >= {TRIAL_SAMPLES} samples)")
            n_t = x.shape[2]
            segs = [Segment(((i + 1) * n_t - TRIAL_SAMPLES) / SFREQ, TRIAL_SAMPLES / SFREQ,
                            int(lab)) for i, lab in enumerate(y)]
            yield SourceRecording(name=f"{split}-{name[:-4]}", subject=name[:-4],
                                  data=np.concatenate(list(x), axis=1) * 1e-6, sfreq=SFREQ,
                                  ch_names=clab, segments=segs, split=split,
                                  meta={"file": rel})
