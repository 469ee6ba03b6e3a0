"""SEED-V (Liu et al. 2021, BCMI SJTU) as distributed: ``EEG_raw/<subject>_<session>_<date>.cnt``
(16 subjects x 3 sessions, Neuroscan CNT, 1000 Hz, 62 EEG channels + M1, M2, VEO, HEO).

Facts and their sources (CBraMod ``preprocessing/preprocessing_SEEDV.py``; the released code reads
the raw ``.cnt`` files with ``mne.io.read_raw_cnt``, not the provided features):

- the session is the second ``_``-field of the file name; ``M1``, ``M2``, ``VEO``, ``HEO`` are
  dropped; the start / end second of each of the 15 trials of a session and its emotion label
  (0 disgust, 1 fear, 2 sad, 3 neutral, 4 happy) are the tables ``TRIALS`` / ``LABELS`` below;
  resampling to 200 Hz and 0.3-75 Hz band-pass on the continuous signal, 1-s windows; the split
  by trial, trials 1-5 / 6-10 / 11-15 of every session;
- 1000 Hz, the channel set and the file naming: the SEED-V documentation.

One recording per trial (``meta["trial"]`` = 1-15, the split rule reads it), cut from the
continuous signal at the released trial times, with one Segment spanning it. The trial times
depend on the session only, so a file shorter than its session's last trial is malformed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from csbrain.benchmark.converters._base import DatasetLayoutError, Segment, SourceRecording

#: Non-EEG channels the released code drops (reported here, the recipe's channel list decides).
NON_EEG = ("M1", "M2", "VEO", "HEO")
#: (start s, end s) of the 15 trials of each session.
TRIALS = {
    "1": list(zip([30, 132, 287, 555, 773, 982, 1271, 1628, 1730, 2025, 2227, 2435, 2667, 2932,
                   3204],
                  [102, 228, 524, 742, 920, 1240, 1568, 1697, 1994, 2166, 2401, 2607, 2901, 3172,
                   3359])),
    "2": list(zip([30, 299, 548, 646, 836, 1000, 1091, 1392, 1657, 1809, 1966, 2186, 2333, 2490,
                   2741],
                  [267, 488, 614, 773, 967, 1059, 1331, 1622, 1777, 1908, 2153, 2302, 2428, 2709,
                   2817])),
    "3": list(zip([30, 353, 478, 674, 825, 908, 1200, 1346, 1451, 1711, 2055, 2307, 2457, 2726,
                   2888],
                  [321, 418, 643, 764, 877, 1147, 1284, 1418, 1679, 1996, 2275, 2425, 2664, 2857,
                   3066])),
}
LABELS = {"1": [4, 1, 3, 2, 0, 4, 1, 3, 2, 0, 4, 1, 3, 2, 0],
          "2": [2, 1, 3, 0, 4, 4, 0, 3, 2, 1, 3, 4, 1, 2, 0],
          "3": [2, 1, 3, 0, 4, 4, 0, 3, 2, 1, 3, 4, 1, 2, 0]}
_NAME = re.compile(r"^EEG_raw/(\d+)_([123])_\d{8}\.cnt$")


def files(raw: Path) -> list[str]:
    """The ``EEG_raw/*.cnt`` files (sorted, relative)."""
    raw = Path(raw)
    return sorted(p.relative_to(raw).as_posix() for p in (raw / "EEG_raw").glob("*.cnt")
                  if _NAME.match(p.relative_to(raw).as_posix()))


def recordings(raw: Path) -> Iterator[SourceRecording]:
    """One recording per trial (all stored channels), a Segment spanning it."""
    import mne

    for rel in files(raw):
        path = Path(raw) / rel
        subject, session = _NAME.match(rel).groups()
        try:
            cnt = mne.io.read_raw_cnt(path, data_format="int16", preload=True, verbose="error")
        except (ValueError, OSError, RuntimeError, IndexError) as err:
            raise DatasetLayoutError(f"{path}: not a readable Neuroscan CNT file ({err})") from None
        data, sfreq = cnt.get_data(), float(cnt.info["sfreq"])
        if data.shape[1] < TRIALS[session][-1][1] * sfreq:
            raise DatasetLayoutError(
                f"{path}: {data.shape[1] / sfreq:.0f} s of signal; session {session}'s last "
                f"trial ends at {TRIALS[session][-1][1]} s")
        for t, ((start, end), lab) in enumerate(zip(TRIALS[session], LABELS[session]), 1):
            x = data[:, int(start * sfreq):int(end * sfreq)]
            yield SourceRecording(
                name=f"{Path(rel).stem}-t{t:02d}", subject=subject, data=x, sfreq=sfreq,
                ch_names=list(cnt.ch_names), segments=[Segment(0.0, x.shape[1] / sfreq, lab)],
                meta={"file": rel, "session": session, "trial": t})
