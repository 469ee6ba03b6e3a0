"""Signal-quality facts about one recording: amplitude statistics, units, flat and noisy channels.

Used by preparation (an implausible amplitude is an error unless confirmed; a flat channel is
named and interpolated) and by :func:`csbrain.data.check.check_recordings`. All functions take
signals in model units (100 µV, :mod:`csbrain.units`) as ``(C, T)`` arrays.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from csbrain import units
from csbrain._checks import more
from csbrain.data.prepconfig import PrepConfig
from csbrain.data.preprocess import RecordingError

logger = logging.getLogger(__name__)

__all__ = ["PLAUSIBLE_UV", "NOISY_FACTOR", "channel_stats", "amplitude_problem",
           "flat_channels", "noisy_channels", "interpolate_channels", "check_signal"]

#: Range (µV) of the typical channel's robust standard deviation that is plausible for EEG.
#: Volts read as µV give ~1e-5 µV, µV read as volts ~1e7 µV: both far outside.
PLAUSIBLE_UV: tuple[float, float] = (0.1, 10_000.0)
#: A channel whose robust standard deviation exceeds this multiple of the median channel's is
#: reported as noisy.
NOISY_FACTOR: float = 10.0


def channel_stats(x: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel amplitude statistics in µV.

    Parameters
    ----------
    x : ndarray, shape (C, T)
        Model units; NaN/inf samples are ignored.

    Returns
    -------
    dict of str to ndarray, shape (C,)
        ``median``, ``p01`` and ``p99`` (robust range), ``std`` (robust: 1.4826 x median
        absolute deviation), all in µV.
    """
    uv = np.where(np.isfinite(x), x, np.nan).astype(np.float64) * units.MICROVOLTS_PER_UNIT
    if uv.shape[1] == 0 or np.isnan(uv).all():
        nan = np.full(len(uv), np.nan)
        return {"median": nan, "p01": nan, "p99": nan, "std": nan}
    med = np.nanmedian(uv, axis=1)
    p01, p99 = np.nanpercentile(uv, [1, 99], axis=1)
    std = 1.4826 * np.nanmedian(np.abs(uv - med[:, None]), axis=1)
    return {"median": med, "p01": p01, "p99": p99, "std": std}


def amplitude_problem(x: np.ndarray, unit: str) -> str | None:
    """Why the amplitude of ``x`` is implausible for EEG read in ``unit`` (None if plausible).

    Parameters
    ----------
    x : ndarray, shape (C, T)
        Model units.
    unit : str
        The unit the source was read in (named in the message).
    """
    typical = float(np.nanmedian(channel_stats(x)["std"]))
    lo, hi = PLAUSIBLE_UV
    if not np.isfinite(typical) or lo <= typical <= hi:
        return None
    if typical < lo:
        guess = "values in volts read as µV" if unit != "V" else "a signal that is not EEG"
    else:
        guess = "values in µV read as volts" if unit != "uV" else "values in nV or raw ADC counts"
    return (f"the typical channel varies by {typical:.3g} µV (robust standard deviation) when "
            f"read in {unit}, outside the {lo:g}-{hi:g} µV plausible for EEG ({guess}?); set "
            f"input.unit to the unit of the numbers, or input.allow_implausible=true to keep it")


def flat_channels(x: np.ndarray, names: Sequence[str], flat_std: float) -> list[str]:
    """Channels whose standard deviation over the whole recording is below ``flat_std``.

    Parameters
    ----------
    x : ndarray, shape (C, T)
        Model units.
    names : sequence of str, length C
    flat_std : float
        Model units (``reject.flat_std``).
    """
    std = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0).std(axis=1)
    return [n for n, s in zip(names, std) if s < flat_std]


def noisy_channels(x: np.ndarray, names: Sequence[str]) -> list[str]:
    """Channels whose robust standard deviation is :data:`NOISY_FACTOR` times the median's."""
    std = channel_stats(x)["std"]
    typical = np.nanmedian(std)
    if not np.isfinite(typical) or typical <= 0:
        return []
    return [n for n, s in zip(names, std) if s > NOISY_FACTOR * typical]


def interpolate_channels(raw, bads: Sequence[str]):
    """Replace ``bads`` in ``raw`` (in place) by spherical-spline interpolation (MNE).

    Positions come from the file when every channel has one, else from MNE's 10-05 template
    (``colin27_1005``, formerly ``standard_1005``) by name.

    Raises
    ------
    RecordingError
        ``flat_channels`` when they cannot be interpolated (no position, fewer than 3 good
        channels with positions); the message names them.
    """
    import mne

    bads = list(bads)
    locs = {c["ch_name"]: c["loc"][:3] for c in raw.info["chs"]}
    if not all(np.isfinite(v).all() and np.any(v) for v in locs.values()):
        builtin = mne.channels.get_builtin_montages()
        name = "colin27_1005" if "colin27_1005" in builtin else "standard_1005"  # MNE >= 1.13
        raw.set_montage(mne.channels.make_standard_montage(name), match_case=False,
                        on_missing="ignore", verbose="error")
        locs = {c["ch_name"]: c["loc"][:3] for c in raw.info["chs"]}
    placed = {n for n, v in locs.items() if np.isfinite(v).all() and np.any(v)}
    good = placed - set(bads)
    if len(good) < 3 or not set(bads) <= placed:
        raise RecordingError("flat_channels", f"flat channel(s) {more(bads)} cannot be "
                             f"interpolated ({len(good)} good channels with positions, needs 3, "
                             f"and a position for each); set reject.flat_channels=reject to "
                             f"reject the windows instead, or channels.exclude to drop them")
    raw.info["bads"] = bads
    raw.interpolate_bads(reset_bads=True, verbose="error")
    return raw


def check_signal(raw, x: np.ndarray, cfg: PrepConfig, unit: str
                 ) -> tuple[np.ndarray, list[str]]:
    """Refuse implausible amplitudes; interpolate channels flat over the whole recording.

    Parameters
    ----------
    raw : mne.io.BaseRaw
        The recording after filtering and resampling (a copy: modified in place when channels
        are interpolated).
    x : ndarray, shape (C, T)
        ``raw``'s signal in model units.
    cfg : PrepConfig
    unit : str
        The unit the source was read in.

    Returns
    -------
    x : ndarray, shape (C, T)
        In model units, flat channels interpolated.
    interpolated : list of str

    Raises
    ------
    RecordingError
        ``implausible_amplitude`` (unless ``input.allow_implausible``) or ``flat_channels``.
    """
    if not cfg.input.allow_implausible:
        problem = amplitude_problem(x, unit)
        if problem:
            raise RecordingError("implausible_amplitude", problem)
    if cfg.reject.flat_std is None or cfg.reject.flat_channels != "interpolate":
        return x, []
    flat = flat_channels(x, raw.ch_names, cfg.reject.flat_std)
    if not flat:
        return x, []
    if len(flat) == len(raw.ch_names):
        raise RecordingError("flat_channels", f"every channel is flat (standard deviation "
                             f"below reject.flat_std={cfg.reject.flat_std:g} model units)")
    interpolate_channels(raw, flat)
    logger.info("flat channel(s) %s interpolated", more(flat))
    return units.to_model_units(raw.get_data(), unit, np.float32), flat

