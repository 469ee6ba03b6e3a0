"""Readers: every MNE-readable file, BIDS folders (mne-bids), UEA ``.ts`` files and arrays.

MNE does all file-format parsing (EDF/EDF+, BDF, FIF, EEGLAB ``.set``, BrainVision ``.vhdr``,
GDF, CNT via :func:`mne.io.read_raw`); only the UEA ``.ts`` text format, which MNE does not
read, is parsed here. A :class:`Recording` names one source (a file, a BIDS recording, a
``.ts`` file or an array) so that it can be sent to a worker process and read there.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from csbrain import units

logger = logging.getLogger(__name__)

__all__ = ["Recording", "Trials", "ReadError", "MNE_EXTENSIONS", "read_raw", "read_bids",
           "read_ts", "raw_from_array", "find_recordings", "load_recording", "source_sha256",
           "source_stat"]

#: File extensions read with :func:`mne.io.read_raw` (companion files such as ``.eeg``,
#: ``.vmrk``, ``.fdt`` are found by MNE from the header file).
MNE_EXTENSIONS: tuple[str, ...] = (".edf", ".bdf", ".fif", ".fif.gz", ".set", ".vhdr", ".gdf",
                                   ".cnt")
_ALL_EXTENSIONS = (*MNE_EXTENSIONS, ".ts")
_COMPANIONS = {".vhdr": (".eeg", ".vmrk"), ".set": (".fdt",)}
_TRUNCATED = re.compile(r"does not match the file size|truncat|fewer samples|end of file",
                        re.IGNORECASE)


class ReadError(ValueError):
    """A source cannot be read (unreadable, truncated, malformed); the message names it."""


@dataclass(frozen=True)
class Recording:
    """One source recording.

    Parameters
    ----------
    rec_id : str
        Identifier, unique within a store (letters, digits, ``._-``).
    kind : {"file", "bids", "ts", "array"}
    path : str | None
        Main file (absolute), None for arrays.
    subject, session, task, run, split : str | None
        Metadata saved in the manifest (``split``: e.g. the official train/test split).
    bids_root : str | None
        BIDS root for ``kind="bids"``.
    array : dict | None
        For ``kind="array"``: ``{"data": (C, T) or (n, C, T), "ch_names", "sfreq", "unit",
        "labels"}``.
    """

    rec_id: str
    kind: str
    path: str | None = None
    subject: str | None = None
    session: str | None = None
    task: str | None = None
    run: str | None = None
    split: str | None = None
    bids_root: str | None = None
    array: dict[str, Any] | None = field(default=None, compare=False)


@dataclass
class Trials:
    """Equal-length labelled trials (the UEA ``.ts`` format, or arrays given as trials).

    Attributes
    ----------
    data : ndarray, shape (n_trials, n_channels, n_times)
        Values in ``unit`` (None: not known by the reader).
    labels : list of str | None
        Class label of each trial.
    class_names : tuple of str
        Declared classes (``@classLabel`` line), in order: label id = index.
    ch_names : tuple of str
    sfreq : float | None
    unit : str | None
    """

    data: np.ndarray
    labels: list[str] | None
    class_names: tuple[str, ...] = ()
    ch_names: tuple[str, ...] = ()
    sfreq: float | None = None
    unit: str | None = None


def _mne():
    import mne

    return mne


def read_raw(path: str | Path, *, allow_truncated: bool = False, preload: bool = True):
    """Read any MNE-readable EEG file fully into memory (or lazily, ``preload=False``).

    Parameters
    ----------
    path : path-like
        EDF/EDF+, BDF, FIF, EEGLAB ``.set``, BrainVision ``.vhdr``, GDF or CNT file.
    allow_truncated : bool
        Keep the readable part of a truncated file instead of raising.

    Returns
    -------
    mne.io.BaseRaw
        Preloaded, data in volts (MNE's convention).

    Raises
    ------
    FileNotFoundError, ReadError
    """
    mne = _mne()
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"source file {str(path)!r} does not exist")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            raw = mne.io.read_raw(path, preload=preload, verbose="warning")
        except Exception as err:  # MNE raises many types for malformed files
            why = str(err).strip() or f"not a valid {path.suffix or 'EEG'} file"
            raise ReadError(f"cannot read {str(path)!r}: {type(err).__name__}: {why}") from None
    for w in caught:
        if _TRUNCATED.search(str(w.message)):
            if not allow_truncated:
                raise ReadError(f"{str(path)!r} is truncated ({w.message}); set "
                                f"input.allow_truncated=true to keep its readable part")
            logger.warning("%s is truncated; keeping its readable part", path)
        else:
            logger.debug("reading %s: %s", path, w.message)
    return raw


def read_bids(rec: Recording):
    """Read one BIDS recording with mne-bids (events, channel types and positions applied)."""
    import mne_bids

    path = Path(rec.path)
    entities = mne_bids.get_entities_from_fname(path.name)
    bp = mne_bids.BIDSPath(root=rec.bids_root, datatype=path.parent.name, suffix="eeg",
                           extension="".join(path.suffixes[-2:]) if path.name.endswith(".fif.gz")
                           else path.suffix, **{k: v for k, v in entities.items() if v})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = mne_bids.read_raw_bids(bp, verbose="error")
            raw.load_data(verbose="error")
    except Exception as err:
        raise ReadError(f"cannot read BIDS recording {str(path)!r}: {type(err).__name__}: "
                        f"{err}") from None
    return raw


def read_ts(path: str | Path) -> Trials:
    """Read a UEA/sktime ``.ts`` file (equal-length multivariate series with class labels).

    Format: header lines start with ``@``; after ``@data`` one line per trial, channels
    separated by ``:``, samples by ``,``, the class label last (when ``@classLabel true``).

    Returns
    -------
    Trials
        ``data`` of shape (n_trials, n_channels, n_times), float64; no rate/names/unit.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"source file {str(path)!r} does not exist")
    header: dict[str, str] = {}
    rows: list[list[str]] = []
    in_data = False
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if not in_data:
                if not line.startswith("@"):
                    raise ReadError(f"{str(path)!r} line {lineno}: expected a @header line "
                                    f"before @data, got {line[:40]!r}")
                key, _, value = line[1:].partition(" ")
                if key.lower() == "data":
                    in_data = True
                else:
                    header[key.lower()] = value.strip()
                continue
            rows.append(line.split(":"))
    if not in_data:
        raise ReadError(f"{str(path)!r} has no @data line; not a .ts file")
    if not rows:
        raise ReadError(f"{str(path)!r} has no trials after @data")
    has_labels = header.get("classlabel", "false").split(" ")[0].lower() == "true"
    class_names = tuple(header.get("classlabel", "").split()[1:]) if has_labels else ()
    labels = [r.pop().strip() for r in rows] if has_labels else None
    n_ch = {len(r) for r in rows}
    if len(n_ch) != 1:
        raise ReadError(f"{str(path)!r}: trials have different channel counts {sorted(n_ch)}")
    try:
        data = np.array([[np.asarray(c.split(","), dtype=float) for c in r] for r in rows])
    except ValueError as err:
        lengths = sorted({len(c.split(",")) for r in rows for c in r})
        if len(lengths) > 1:
            raise ReadError(f"{str(path)!r}: series have unequal lengths {lengths[:5]}; expected "
                            f"@equalLength true") from None
        raise ReadError(f"{str(path)!r}: malformed sample values ({err})") from None
    if data.ndim != 3:
        raise ReadError(f"{str(path)!r}: series have unequal lengths; expected @equalLength true")
    if labels is not None and class_names:
        unknown = sorted(set(labels) - set(class_names))
        if unknown:
            raise ReadError(f"{str(path)!r}: labels {unknown} are not declared in @classLabel "
                            f"{list(class_names)}")
    return Trials(data=data, labels=labels, class_names=class_names)


def raw_from_array(data: np.ndarray, ch_names: Sequence[str], sfreq: float, *,
                   unit: str = "V", ch_types: str | Sequence[str] = "eeg"):
    """Wrap a continuous array in an :class:`mne.io.RawArray` (volts, as MNE holds EEG).

    Parameters
    ----------
    data : ndarray, shape (n_channels, n_times)
        Values in ``unit``.
    ch_names : sequence of str
    sfreq : float
        Sampling rate in Hz.
    unit : str
        Amplitude unit of ``data`` (see :data:`csbrain.units.UNIT_SCALES`).
    """
    mne = _mne()
    data = np.asarray(data, dtype=float)
    if data.ndim != 2 or data.shape[0] != len(ch_names):
        raise ValueError(f"data has shape {data.shape}; expected (n_channels={len(ch_names)}, "
                         f"n_times)")
    volts = data * (units.unit_scale(unit) / units.unit_scale("V"))
    info = mne.create_info(list(ch_names), float(sfreq), ch_types)
    return mne.io.RawArray(volts, info, verbose="error")


def _sanitize(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "rec"


def _stem(path: Path) -> str:
    name = path.name
    for ext in sorted(_ALL_EXTENSIONS, key=len, reverse=True):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return path.stem


def _bids_recordings(root: Path) -> list[Recording]:
    import mne_bids

    paths = mne_bids.find_matching_paths(root, datatypes="eeg", suffixes="eeg",
                                         extensions=list(MNE_EXTENSIONS))
    out = []
    for bp in sorted(paths, key=lambda p: str(p.fpath)):
        rec_id = _sanitize(bp.copy().update(suffix=None, extension=None).basename)
        out.append(Recording(rec_id=rec_id, kind="bids", path=str(Path(bp.fpath).resolve()),
                             subject=bp.subject, session=bp.session, task=bp.task, run=bp.run,
                             bids_root=str(root.resolve())))
    if not out:
        raise FileNotFoundError(f"BIDS root {str(root)!r} has no EEG recordings "
                                f"(expected sub-*/[ses-*/]eeg/*_eeg{{{','.join(MNE_EXTENSIONS)}}})")
    return out


def find_recordings(sources: Sequence[str | Path]) -> list[Recording]:
    """Expand files, folders and BIDS roots into recordings (sorted, unique ids).

    A folder holding ``dataset_description.json`` is a BIDS root (read with mne-bids); any
    other folder is searched recursively for files with :data:`MNE_EXTENSIONS` or ``.ts``.

    Raises
    ------
    FileNotFoundError
        A source does not exist, or a folder holds no readable file.
    """
    recs: list[Recording] = []
    files: list[Path] = []
    for src in sources:
        p = Path(src).expanduser()
        if not p.exists():
            raise FileNotFoundError(f"source {str(src)!r} does not exist; expected a file, a "
                                    f"folder, a BIDS root or a named dataset (csbrain datasets)")
        if p.is_dir():
            if (p / "dataset_description.json").is_file():
                recs.extend(_bids_recordings(p))
                continue
            found = sorted(f for f in p.rglob("*") if f.is_file()
                           and f.name.lower().endswith(_ALL_EXTENSIONS))
            if not found:
                raise FileNotFoundError(f"folder {str(src)!r} has no EEG files (looked for "
                                        f"{', '.join(_ALL_EXTENSIONS)})")
            files.extend(found)
        else:
            files.append(p)
    files = [f.resolve() for f in files]
    stems = [_stem(f) for f in files]
    dup = {s for s in stems if stems.count(s) > 1}
    common = Path(os.path.commonpath([str(f.parent) for f in files])) if files else None
    for f, stem in zip(files, stems):
        rec_id = stem
        if stem in dup:  # same name in several folders: the path below the common folder
            rec_id = "__".join([*f.parent.relative_to(common).parts, stem])
        kind = "ts" if f.name.lower().endswith(".ts") else "file"
        recs.append(Recording(rec_id=_sanitize(rec_id), kind=kind, path=str(f)))
    ids = [r.rec_id for r in recs]
    clash = sorted({i for i in ids if ids.count(i) > 1})
    if clash:
        raise ValueError(f"sources give the same recording id {clash} twice; pass each file once")
    return sorted(recs, key=lambda r: r.rec_id)


def load_recording(rec: Recording, *, allow_truncated: bool = False):
    """Read a :class:`Recording`: an :class:`mne.io.BaseRaw` or, for trials, :class:`Trials`."""
    if rec.kind == "file":
        return read_raw(rec.path, allow_truncated=allow_truncated)
    if rec.kind == "bids":
        return read_bids(rec)
    if rec.kind == "ts":
        return read_ts(rec.path)
    if rec.kind == "array":
        a = rec.array or {}
        data = np.asarray(a["data"])
        if data.ndim == 3:
            return Trials(data=data, labels=a.get("labels"),
                          class_names=tuple(a.get("class_names", ())),
                          ch_names=tuple(a["ch_names"]), sfreq=float(a["sfreq"]),
                          unit=a.get("unit"))
        return raw_from_array(data, a["ch_names"], a["sfreq"], unit=a.get("unit", "V"))
    raise ValueError(f"recording kind={rec.kind!r} is unknown; expected file, bids, ts or array")


def _source_paths(rec: Recording) -> list[Path]:
    """The source file and its companions (.eeg, .vmrk, .fdt); [] for arrays."""
    if rec.path is None:
        return []
    main = Path(rec.path)
    return [main] + [main.with_suffix(s) for s in _COMPANIONS.get(main.suffix.lower(), ())
                     if main.with_suffix(s).exists()]


def source_stat(rec: Recording) -> dict[str, list[int]]:
    """``{file name: [size, mtime_ns]}`` of the source files: a cheap first test of change."""
    out = {}
    for p in _source_paths(rec):
        st = p.stat()
        out[p.name] = [int(st.st_size), int(st.st_mtime_ns)]
    return out


def source_sha256(rec: Recording) -> dict[str, str]:
    """sha256 of the source file and its companions (.eeg, .vmrk, .fdt); {} for arrays."""
    out = {}
    for p in _source_paths(rec):
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        out[p.name] = h.hexdigest()
    return out
