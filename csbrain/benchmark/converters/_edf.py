"""EDF reading shared by the EDF converters (MNE), and the TUH file-tree helpers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from csbrain.benchmark.converters._base import DatasetLayoutError

__all__ = ["read_edf", "listing"]


def read_edf(path: Path) -> tuple[np.ndarray, float, list[str]]:
    """``(data (C, N) volts, sfreq, channel names)`` of an EDF file.

    Raises
    ------
    DatasetLayoutError
        The file is not a readable EDF (the message names it).
    """
    import mne

    try:
        raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    except (ValueError, OSError, RuntimeError) as err:
        raise DatasetLayoutError(f"{path}: not a readable EDF file ({err})") from None
    return raw.get_data(), float(raw.info["sfreq"]), list(raw.ch_names)


def listing(raw: Path, suffixes: tuple[str, ...]) -> list[str]:
    """Sorted POSIX paths relative to ``raw`` of the files ending in one of ``suffixes``."""
    raw = Path(raw)
    return sorted(p.relative_to(raw).as_posix() for p in raw.rglob("*")
                  if p.is_file() and p.name.lower().endswith(suffixes))
