"""The input contract of CSBrain: sampling rate, patch length and amplitude unit.

Every other module takes these facts from here (one fact, one place).

- Sampling rate: 200 Hz.
- Patch: 1 second = 200 samples; a model input is ``(batch, channels, patches, 200)``.
- Amplitude unit: 100 µV. A signal in µV is divided by 100; MNE holds volts, so a signal
  in volts is multiplied by 1e4.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Sampling rate the model expects, in Hz.
SFREQ: float = 200.0
#: Samples per patch (one second at :data:`SFREQ`).
PATCH_SIZE: int = 200
#: One model unit, in microvolts.
MICROVOLTS_PER_UNIT: float = 100.0
#: One model unit, in volts.
VOLTS_PER_UNIT: float = MICROVOLTS_PER_UNIT * 1e-6

#: Scale factors from common physical units to model units.
UNIT_SCALES: dict[str, float] = {
    "V": 1.0 / VOLTS_PER_UNIT,
    "mV": 1e-3 / VOLTS_PER_UNIT,
    "uV": 1e-6 / VOLTS_PER_UNIT,
    "µV": 1e-6 / VOLTS_PER_UNIT,
    "nV": 1e-9 / VOLTS_PER_UNIT,
    "model": 1.0,
}


def unit_scale(unit: str) -> float:
    """Return the factor that converts a signal in ``unit`` to model units (100 µV).

    Parameters
    ----------
    unit : str
        One of ``"V"``, ``"mV"``, ``"uV"`` (or ``"µV"``), ``"nV"``, ``"model"``.
    """
    if unit not in UNIT_SCALES:
        raise ValueError(
            f"unit={unit!r} is not a known amplitude unit; expected one of {sorted(UNIT_SCALES)}"
        )
    return UNIT_SCALES[unit]


def to_model_units(x: np.ndarray, unit: str, dtype: Any = None) -> np.ndarray:
    """Convert an array in ``unit`` (e.g. ``"V"`` as MNE holds it) to model units (100 µV).

    Parameters
    ----------
    x : array_like, shape (...)
        The signal in ``unit``.
    unit : str
        One of :data:`UNIT_SCALES`.
    dtype : numpy dtype | None
        Of the result (the stored windows use float32); None keeps numpy's result type.

    Returns
    -------
    ndarray, shape (...)
        ``x`` in model units.
    """
    out = np.asarray(x) * unit_scale(unit)
    return out if dtype is None else out.astype(dtype, copy=False)


def from_model_units(x: np.ndarray, unit: str) -> np.ndarray:
    """Convert an array in model units (100 µV) back to ``unit``."""
    return np.asarray(x) / unit_scale(unit)


def n_patches_for(n_samples: int) -> int:
    """Number of whole patches in ``n_samples`` samples at :data:`SFREQ`."""
    return int(n_samples) // PATCH_SIZE
