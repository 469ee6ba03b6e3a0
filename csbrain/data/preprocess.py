"""Preprocessing to the input contract (spec §1): pure functions over MNE raws and arrays.

Order for a continuous recording (:func:`preprocess_raw`): pick channel types -> optional
re-reference -> pick/map channels through :mod:`csbrain.montage` -> band-pass and notch at
the source rate -> resample to :data:`csbrain.units.SFREQ` -> convert to model units (100 µV)
-> cut windows (continuous or event-locked) -> reject windows (counted per reason). Trials
(:func:`preprocess_trials`) skip the channel and annotation steps. Every parameter is in
:class:`~csbrain.data.prepconfig.PrepConfig`.

Functions return new objects (MNE raws are copied) and raise :class:`RecordingError` with a
reason code when a recording cannot be used; a multi-file preparation counts those as skips.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from csbrain import units
from csbrain._checks import more
from csbrain.data.prepconfig import ChannelConfig, FilterConfig, PrepConfig
from csbrain.montage import Montage, canonical_name, positions_from_chs

logger = logging.getLogger(__name__)

__all__ = ["PrepConfig", "RecordingError", "SKIP_REASONS", "pick_channels", "set_reference",
           "NYQUIST_FRACTION", "adapt_filter", "check_filter_rate", "filter_raw", "filter_array",
           "resample_raw", "resample_array", "RESAMPLE_METHODS", "nearest_1020",
           "select_channels"]

#: Reason codes of recordings skipped during preparation.
SKIP_REASONS: dict[str, str] = {
    "unreadable": "file cannot be read, is truncated or malformed",
    "no_channels": "none of the requested channels",
    "missing_channels": "some requested channels are missing",
    "unknown_channels": "channel names that are not 10-05 electrodes",
    "too_short": "shorter than one window",
    "sfreq_too_low": "sampling rate too low for the requested filter",
    "implausible_amplitude": "amplitudes implausible for EEG in the stated unit",
    "flat_channels": "flat or dead channels that cannot be interpolated",
    "no_windows": "every window was rejected (counts per reason in the message)",
    "no_labels": "labels missing for a labelled preparation",
    "channels_differ": "channel list differs from the store's",
    "bad_input": "other invalid input",
}

#: The 19 channels of the pretraining montage (spec §1), canonical 10-05 names.
PRETRAINING_1020: tuple[str, ...] = ("Fp1", "Fp2", "F3", "F4", "C3", "C4", "P3", "P4", "O1",
                                     "O2", "F7", "F8", "T7", "T8", "P7", "P8", "Fz", "Cz", "Pz")


class RecordingError(ValueError):
    """A recording cannot be prepared; ``reason`` is a key of :data:`SKIP_REASONS`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason if reason in SKIP_REASONS else "bad_input"


# ---------------------------------------------------------------------------- channels
def _positions_from(raw, source: str) -> dict[str, np.ndarray]:
    import mne

    if source != "file":
        try:
            montage = mne.channels.make_standard_montage(source)
        except ValueError as err:
            raise ValueError(f"channels.positions={source!r} is not 'file' nor an MNE "
                             f"standard montage: {err}") from None
        raw.set_montage(montage, on_missing="ignore", verbose="error")
    return positions_from_chs(raw.info["chs"])


def _sphere_centre(points: np.ndarray) -> np.ndarray:
    """Least-squares sphere centre of points (n, 3): solves |p|^2 = 2 c.p + k."""
    a = np.c_[2 * points, np.ones(len(points))]
    sol, *_ = np.linalg.lstsq(a, (points ** 2).sum(axis=1), rcond=None)
    return sol[:3]


@functools.lru_cache(maxsize=1)
def _spherical_1020() -> np.ndarray:
    """Unit directions (19, 3) of :data:`PRETRAINING_1020` on MNE's spherical ``easycap-M1``."""
    import mne

    m = mne.channels.make_standard_montage("easycap-M1")
    info = mne.create_info(m.ch_names, 200.0, "eeg")
    info.set_montage(m, verbose="error")
    pos = {c["ch_name"]: c["loc"][:3] for c in info["chs"]}
    b = np.array([pos[s] for s in PRETRAINING_1020], dtype=float)
    b -= _sphere_centre(b)
    return b / np.linalg.norm(b, axis=1, keepdims=True)


def nearest_1020(positions: dict[str, np.ndarray]) -> dict[str, str]:
    """Pick one channel per pretraining 10-20 site, nearest in direction from the head centre.

    The sites are taken from MNE's spherical ``easycap-M1`` layout (an idealised cap, like the
    BioSemi and most cap layouts; the realistic 10-05 template tilts the vertex forward); the
    channels are centred on their fitted sphere, so any radius or offset compares by direction.
    For BioSemi 128 this gives the usual equivalents (Cz = A1, Pz = A19, Fz = C21).

    Parameters
    ----------
    positions : dict of str to ndarray, shape (3,)
        Channel positions (at least 19, covering the scalp).

    Returns
    -------
    dict
        ``{channel name: 10-05 site}`` for the 19 sites of :data:`PRETRAINING_1020`
        (an optimal one-to-one assignment, :func:`scipy.optimize.linear_sum_assignment`).
    """
    from scipy.optimize import linear_sum_assignment

    if len(positions) < len(PRETRAINING_1020):
        raise RecordingError("no_channels", f"nearest_1020 needs at least 19 channels with "
                             f"positions, got {len(positions)}")
    names = list(positions)
    a = np.array([positions[n] for n in names], dtype=float)
    a -= _sphere_centre(a)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    rows, cols = linear_sum_assignment(1.0 - a @ _spherical_1020().T)
    return {names[r]: PRETRAINING_1020[c] for r, c in sorted(zip(rows, cols), key=lambda rc: rc[1])}


def select_channels(names: Sequence[str], types: Sequence[str], cfg: ChannelConfig,
                    positions: dict[str, np.ndarray] | None = None):
    """Choose, order and name channels and build their :class:`~csbrain.montage.Montage`.

    Parameters
    ----------
    names, types : sequence of str
        Channel names and MNE types in the source.
    cfg : ChannelConfig
    positions : dict of str to ndarray (3,) | None
        Source positions by name (head frame, metres), if known.

    Returns
    -------
    keep : list of str
        Source names of the kept channels, in store order.
    montage : csbrain.montage.Montage
        Of the kept channels; ``montage.channels`` are their names in the store.

    Raises
    ------
    RecordingError
        ``no_channels``, ``missing_channels``, ``unknown_channels``.
    """
    pos = positions or {}
    if cfg.pick:
        have: dict[str, str] = {}
        for n in names:
            have.setdefault(_match_key(n), n)
        want = [(p, canonical_name(p)) for p in cfg.pick]
        found = [(p, c, have.get(c.lower())) for p, c in want]
        missing = [p for p, _, n in found if n is None]
        if len(missing) == len(want):
            raise RecordingError("no_channels", f"none of the requested channels {list(cfg.pick)} "
                                 f"is in the recording (it has [{more(map(repr, names), 40)}])")
        if missing:
            raise RecordingError("missing_channels", f"requested channels {missing} are missing "
                                 f"(the recording has [{more(map(repr, names), 40)}])")
        keep = [n for _, _, n in found]
        new_names = [c for _, c, _ in found]
    else:
        excluded = {_match_key(n) for n in cfg.exclude} | set(cfg.exclude)
        keep = [n for n, t in zip(names, types) if t in cfg.types and n not in excluded
                and not (excluded and _match_key(n) in excluded)]
        if not keep:
            raise RecordingError("no_channels", f"the recording has no channel of types "
                                 f"{list(cfg.types)} (it has {sorted(set(types))})")
        new_names = list(keep)
    if cfg.nearest_1020:
        sites = nearest_1020({n: pos[n] for n in keep if n in pos})
        keep, new_names = list(sites), list(sites.values())
    if cfg.match == "positions" and not cfg.nearest_1020:
        lacking = [n for n in keep if n not in pos]
        if lacking:
            raise RecordingError("unknown_channels", f"channels [{more(map(repr, lacking))}] "
                                 f"have no position in channels.positions={cfg.positions!r}")
        new_names = [f"{n}@{cfg.positions}" for n in keep]
        return keep, Montage.from_names(new_names, {t: pos[n] for t, n in zip(new_names, keep)})
    given = {t: pos[n] for t, n in zip(new_names, keep)
             if n in pos and canonical_name(t, default=None) is None}
    try:
        return keep, Montage.from_names(new_names, given or None)
    except ValueError as err:
        raise RecordingError("unknown_channels", f"{err}\n(set channels.pick to known "
                             f"channels, channels.exclude to drop these, or channels.positions "
                             f"to place them)") from None


def pick_channels(raw, cfg: ChannelConfig):
    """Apply :func:`select_channels` to a copy of ``raw`` (kept channels, store order, names).

    Returns
    -------
    raw : mne.io.BaseRaw
        A copy holding the kept channels in store order, renamed to ``montage.channels``.
    montage : csbrain.montage.Montage
    source_channels : list of str
        The kept channels' names in the file.
    """
    raw = raw.copy()
    pos = _positions_from(raw, cfg.positions) if cfg.positions is not None else {}
    keep, montage = select_channels(raw.ch_names, raw.get_channel_types(), cfg, pos)
    raw.pick(keep)
    raw.reorder_channels(keep)
    mapping = {old: new for old, new in zip(keep, montage.channels) if old != new}
    if mapping:
        raw.rename_channels(mapping, verbose="error")
    return raw, montage, keep


def _match_key(name: str) -> str:
    """How a channel name is matched: its canonical 10-05 name if it has one, any case."""
    return canonical_name(name, default=name).lower()


def set_reference(raw, reference: Sequence[str]):
    """Re-reference a copy: ``["average"]`` or the mean of named channels; ``[]`` keeps it."""
    if not reference:
        return raw
    raw = raw.copy()
    if list(reference) == ["average"]:
        raw.set_eeg_reference("average", projection=False, verbose="error")
        return raw
    lookup = {_match_key(n): n for n in raw.ch_names}
    refs = [lookup.get(_match_key(r)) for r in reference]
    missing = [r for r, n in zip(reference, refs) if n is None]
    if missing:
        raise RecordingError("missing_channels", f"reference channels {missing} are not in the "
                             f"recording (it has [{more(map(repr, raw.ch_names), 40)}])")
    raw.set_eeg_reference(refs, projection=False, verbose="error")
    return raw


# ---------------------------------------------------------------------------- filters
#: A low-pass edge at or above a recording's Nyquist frequency is lowered to this fraction of it.
NYQUIST_FRACTION: float = 0.9


def adapt_filter(sfreq: float, cfg: FilterConfig) -> tuple[FilterConfig, list[str]]:
    """The filters of ``cfg`` that a recording sampled at ``sfreq`` can carry.

    A low-pass edge (``h_freq``) at or above the Nyquist frequency is lowered to
    :data:`NYQUIST_FRACTION` of it; a notch at or above Nyquist is dropped (there is nothing
    there to remove). A high-pass edge (``l_freq``) at or above Nyquist cannot be adapted.

    Parameters
    ----------
    sfreq : float
        Sampling rate of the recording, Hz.
    cfg : FilterConfig

    Returns
    -------
    cfg : FilterConfig
        The filters applied to this recording (``cfg`` itself when nothing changed).
    notes : list of str
        One line per change, e.g. ``"filter.h_freq 75 Hz -> 57.6 Hz (0.9 x Nyquist 64 Hz)"``.

    Raises
    ------
    RecordingError
        ``sfreq_too_low`` when ``l_freq`` is at or above Nyquist (or above the lowered
        ``h_freq``).
    """
    nyq = sfreq / 2.0
    notes: list[str] = []
    h_freq = cfg.h_freq
    if h_freq is not None and h_freq >= nyq:
        h_freq = round(NYQUIST_FRACTION * nyq, 3)
        notes.append(f"filter.h_freq {cfg.h_freq:g} Hz -> {h_freq:g} Hz "
                     f"({NYQUIST_FRACTION:g} x Nyquist {nyq:g} Hz)")
    notch = tuple(f for f in cfg.notch if f < nyq)
    if notch != cfg.notch:
        dropped = ", ".join(f"{f:g}" for f in cfg.notch if f >= nyq)
        notes.append(f"filter.notch {dropped} Hz dropped (at or above Nyquist {nyq:g} Hz)")
    if not notes:
        return cfg, notes
    if cfg.l_freq is not None and h_freq is not None and cfg.l_freq >= h_freq:
        raise RecordingError("sfreq_too_low", f"filter.l_freq={cfg.l_freq:g} Hz is not below "
                             f"the low-pass {h_freq:g} Hz this recording allows (sampling rate "
                             f"{sfreq:g} Hz); lower filter.l_freq or set it to null")
    return dataclasses.replace(cfg, h_freq=h_freq, notch=notch), notes


def check_filter_rate(sfreq: float, cfg: FilterConfig) -> None:
    """Raise ``RecordingError("sfreq_too_low")`` if a filter edge is at or above Nyquist.

    :func:`adapt_filter` first gives the filters a recording can carry.
    """
    nyq = sfreq / 2.0
    for name, f in (("filter.h_freq", cfg.h_freq), ("filter.l_freq", cfg.l_freq),
                    *((f"filter.notch={cfg.notch}", f) for f in cfg.notch)):
        if f is not None and f >= nyq:
            raise RecordingError("sfreq_too_low", f"{name}={f:g} Hz is at or above the Nyquist "
                                 f"frequency {nyq:g} Hz of this recording (sampling rate "
                                 f"{sfreq:g} Hz); lower it or set it to null")


def _filter_kwargs(cfg: FilterConfig) -> dict[str, Any]:
    return {"method": cfg.method, "verbose": "error"}


def _adapted(sfreq: float, cfg: FilterConfig) -> FilterConfig:
    cfg, notes = adapt_filter(sfreq, cfg)
    for note in notes:
        logger.info("sampling rate %g Hz: %s", sfreq, note)
    check_filter_rate(sfreq, cfg)
    return cfg


def filter_raw(raw, cfg: FilterConfig, *, copy: bool = True):
    """Band-pass and notch ``raw`` (a copy unless ``copy=False``) at its own rate (MNE).

    The filters are first adapted to the recording's rate (:func:`adapt_filter`).
    """
    cfg = _adapted(raw.info["sfreq"], cfg)
    raw = raw.copy() if copy else raw
    if cfg.l_freq is not None or cfg.h_freq is not None:
        raw.filter(cfg.l_freq, cfg.h_freq, picks="all", **_filter_kwargs(cfg))
    if cfg.notch:
        raw.notch_filter(list(cfg.notch), picks="all", **_filter_kwargs(cfg))
    return raw


def filter_array(x: np.ndarray, sfreq: float, cfg: FilterConfig) -> np.ndarray:
    """Same filters as :func:`filter_raw` on an array ``(..., n_times)`` (float64 copy)."""
    import mne

    cfg = _adapted(sfreq, cfg)
    x = np.array(x, dtype=np.float64)
    if cfg.l_freq is not None or cfg.h_freq is not None:
        x = mne.filter.filter_data(x, sfreq, cfg.l_freq, cfg.h_freq, **_filter_kwargs(cfg))
    if cfg.notch:
        x = mne.filter.notch_filter(x, sfreq, list(cfg.notch), **_filter_kwargs(cfg))
    return x


#: Resampling methods (MNE): ``fft`` (whole-signal, the default of prepared stores) and
#: ``polyphase`` (scipy ``resample_poly``: a finite kernel, so chunked streaming is exact).
RESAMPLE_METHODS: tuple[str, ...] = ("fft", "polyphase")


def resample_raw(raw, *, copy: bool = True, method: str = "fft"):
    """Resample ``raw`` (a copy unless ``copy=False``) to :data:`csbrain.units.SFREQ` (MNE)."""
    if raw.info["sfreq"] == units.SFREQ:
        return raw
    return (raw.copy() if copy else raw).resample(units.SFREQ, method=method, verbose="error")


def resample_array(x: np.ndarray, sfreq: float, method: str = "fft") -> np.ndarray:
    """Resample ``(..., n_times)`` from ``sfreq`` to :data:`csbrain.units.SFREQ` (MNE)."""
    import mne

    if sfreq == units.SFREQ:
        return np.asarray(x, dtype=np.float64)
    return mne.filter.resample(np.asarray(x, dtype=np.float64), up=units.SFREQ / sfreq,
                               method=method, verbose="error")
