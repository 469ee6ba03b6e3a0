"""Windowing, event epoching and rejection; the whole per-recording path to model input.

:func:`preprocess_raw` (continuous recordings) and :func:`preprocess_trials` (``.ts`` trials,
arrays of trials) return :class:`Windows`: ``x`` of shape ``(n, C, P, 200)`` in model units
at 200 Hz, labels, window starts and the counts of rejected windows per reason.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

import numpy as np

from csbrain import units
from csbrain._checks import more
from csbrain.data.labels import required_label
from csbrain.data.prepconfig import LabelConfig, PrepConfig, RejectConfig, WindowConfig
from csbrain.data.preprocess import (
    RecordingError,
    adapt_filter,
    filter_array,
    filter_raw,
    pick_channels,
    resample_array,
    resample_raw,
    select_channels,
    set_reference,
)
from csbrain.data.quality import amplitude_problem, check_signal

logger = logging.getLogger(__name__)

__all__ = ["Windows", "REJECT_REASONS", "KEEP_OPTIONS", "rejection_text", "window_starts",
           "event_windows", "annotation_mask", "cut_windows", "reject_windows", "to_patches",
           "preprocess_raw", "preprocess_trials"]

#: Reasons a window is rejected, in the order they are tested (a window counts once).
REJECT_REASONS: tuple[str, ...] = ("out_of_bounds", "nan", "bad_annotation", "flat", "amplitude")
#: The option that keeps the windows rejected for each reason.
KEEP_OPTIONS: dict[str, str] = {
    "out_of_bounds": "labels.tmin or a shorter windows.length_s (event windows reach outside "
                     "the recording)",
    "nan": "none (samples are missing in the source file)",
    "bad_annotation": "reject.bad_annotations=false",
    "flat": "reject.flat_std=null, or reject.flat_channels=interpolate",
    "amplitude": "reject.max_abs=null or a larger bound (model units: 5 = 500 µV); raw "
                 "consumer EEG often exceeds 100 µV",
}


def rejection_text(counts: dict[str, int], *, options: bool = False) -> str:
    """``"amplitude 12, flat 3"`` of the non-zero counts; with ``options``, each reason's
    option from :data:`KEEP_OPTIONS` (``"amplitude 12 (keep: reject.max_abs=null ...)"``)."""
    parts = [f"{k} {v}" + (f" (keep them with: {KEEP_OPTIONS[k]})" if options else "")
             for k, v in counts.items() if v]
    return "; ".join(parts) if options else ", ".join(parts)


@dataclass
class Windows:
    """The prepared windows of one recording.

    Attributes
    ----------
    x : ndarray, shape (n, C, P, 200), float32
        Model units (100 µV) at :data:`csbrain.units.SFREQ`.
    y : ndarray, shape (n,), int64
        Labels, -1 when unlabelled.
    start : ndarray, shape (n,), int64
        Window start sample at 200 Hz (continuous, events) or trial index (trials).
    montage : csbrain.montage.Montage
    source_channels : list of str
    rejected : dict of str to int
        Rejected windows per reason (every key of :data:`REJECT_REASONS`).
    n_candidates : int
    source_sfreq : float
    duration_s : float
    filter : dict
        The filters applied (adapted to the source rate, :func:`~csbrain.data.preprocess.
        adapt_filter`).
    interpolated : list of str
        Flat channels replaced by interpolation.
    notes : list of str
        What was adapted or repaired, one line each (filters, interpolated channels).
    flagged : dict of str to int
        Windows each rejection rule flags on its own (``rejected`` counts each window once).
    """

    x: np.ndarray
    y: np.ndarray
    start: np.ndarray
    montage: object
    source_channels: list[str]
    rejected: dict[str, int] = field(default_factory=dict)
    n_candidates: int = 0
    source_sfreq: float = 0.0
    duration_s: float = 0.0
    filter: dict = field(default_factory=dict)
    interpolated: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    flagged: dict[str, int] = field(default_factory=dict)


def window_starts(n_times: int, cfg: WindowConfig) -> np.ndarray:
    """Start samples (200 Hz) of continuous windows in ``n_times`` samples, after the crops.

    Raises ``RecordingError("too_short")`` when not even one window fits.
    """
    n = cfg.n_samples
    first = int(round(cfg.crop_start_s * units.SFREQ))
    stop = n_times - int(round(cfg.crop_end_s * units.SFREQ))
    if stop - first < n:
        raise RecordingError("too_short", f"recording has {n_times / units.SFREQ:.2f} s "
                             f"({max(stop - first, 0) / units.SFREQ:.2f} s after crops), shorter "
                             f"than one window of windows.length_s={cfg.length_s:g} s")
    return np.arange(first, stop - n + 1, cfg.stride_samples, dtype=np.int64)


def _onset_samples(raw, onsets: np.ndarray) -> np.ndarray:
    return raw.time_as_index(onsets, use_rounding=True, origin=raw.annotations.orig_time)


def event_windows(raw, labels: LabelConfig) -> tuple[np.ndarray, np.ndarray]:
    """Start samples and labels of event-locked windows (annotations named in ``labels.events``).

    Returns
    -------
    starts : ndarray, shape (n,), int64
        Window starts in samples of ``raw`` (onset + ``labels.tmin``), possibly out of range.
    y : ndarray, shape (n,), int64
    """
    ann = raw.annotations
    hit = np.array([d in labels.events for d in ann.description], dtype=bool)
    if not hit.any():
        found = sorted(set(ann.description))
        raise RecordingError("no_labels", f"no annotation matches labels.events "
                             f"{sorted(labels.events)} (the recording has "
                             f"[{more(map(repr, found), 20)}])")
    starts = _onset_samples(raw, ann.onset[hit] + labels.tmin).astype(np.int64)
    y = np.array([labels.events[d] for d in ann.description[hit]], dtype=np.int64)
    return starts, y


def annotation_mask(raw) -> np.ndarray:
    """Boolean (n_times,) mask of samples inside annotations whose description starts with 'bad'."""
    mask = np.zeros(raw.n_times, dtype=bool)
    ann = raw.annotations
    bad = np.array([d.lower().startswith("bad") for d in ann.description], dtype=bool)
    if bad.any():
        a = _onset_samples(raw, ann.onset[bad])
        b = _onset_samples(raw, ann.onset[bad] + ann.duration[bad])
        for s, e in zip(a, b):
            mask[max(s, 0): max(e, s + 1)] = True
    return mask


def cut_windows(x: np.ndarray, starts: np.ndarray, n: int) -> np.ndarray:
    """Windows ``(len(starts), C, n)`` of ``x`` (C, T); starts must be in range."""
    if len(starts) == 0:
        return np.zeros((0, x.shape[0], n), dtype=x.dtype)
    idx = starts[:, None] + np.arange(n)[None, :]
    return np.ascontiguousarray(x[:, idx].transpose(1, 0, 2))


def reject_windows(w: np.ndarray, cfg: RejectConfig, *, nan: np.ndarray | None = None,
                   bad: np.ndarray | None = None, out_of_bounds: np.ndarray | None = None,
                   each: dict[str, int] | None = None) -> tuple[np.ndarray, dict[str, int]]:
    """Decide which windows to keep; count the others by the first reason that applies.

    Parameters
    ----------
    w : ndarray, shape (n, C, T)
        Windows in model units.
    cfg : RejectConfig
    nan, bad, out_of_bounds : ndarray of bool, shape (n,) | None
        Precomputed per-window flags (source NaN, bad annotations, outside the recording).
    each : dict | None
        Filled, when given, with how many windows each rule flags on its own (a window may
        count under several rules), for reports such as ``csbrain check``.

    Returns
    -------
    keep : ndarray of bool, shape (n,)
    counts : dict of str to int
        One entry per :data:`REJECT_REASONS`.
    """
    n = len(w)
    flags: dict[str, np.ndarray] = {r: np.zeros(n, dtype=bool) for r in REJECT_REASONS}
    if out_of_bounds is not None:
        flags["out_of_bounds"] |= out_of_bounds
    flags["nan"] |= ~np.isfinite(w).reshape(n, -1).all(axis=1) if n else flags["nan"]
    if nan is not None:
        flags["nan"] |= nan
    if bad is not None and cfg.bad_annotations:
        flags["bad_annotation"] |= bad
    if n:
        safe = np.nan_to_num(w, nan=0.0, posinf=0.0, neginf=0.0)
        if cfg.flat_std is not None:
            flags["flat"] |= (safe.std(axis=2) < cfg.flat_std).any(axis=1)
        if cfg.max_abs is not None:
            flags["amplitude"] |= (np.abs(safe) >= cfg.max_abs).reshape(n, -1).any(axis=1)
    if each is not None:
        each.update({r: int(f.sum()) for r, f in flags.items()})
    keep = np.ones(n, dtype=bool)
    counts = {}
    for reason in REJECT_REASONS:
        hit = flags[reason] & keep
        counts[reason] = int(hit.sum())
        keep &= ~hit
    return keep, counts


def to_patches(w: np.ndarray) -> np.ndarray:
    """Reshape windows ``(n, C, P*200)`` to model input ``(n, C, P, 200)``."""
    n, c, t = w.shape
    if t % units.PATCH_SIZE:
        raise ValueError(f"window length {t} is not a multiple of {units.PATCH_SIZE} samples")
    return w.reshape(n, c, t // units.PATCH_SIZE, units.PATCH_SIZE)


def _mask_any(mask: np.ndarray, starts: np.ndarray, n: int) -> np.ndarray:
    if len(starts) == 0:
        return np.zeros(0, dtype=bool)
    csum = np.concatenate([[0], np.cumsum(mask, dtype=np.int64)])
    s = np.clip(starts, 0, len(mask))
    e = np.clip(starts + n, 0, len(mask))
    return (csum[e] - csum[s]) > 0


def _detrend(w: np.ndarray, how: str) -> np.ndarray:
    if how == "mean" and w.size:
        w = w - w.mean(axis=-1, keepdims=True)
    return w


def preprocess_raw(raw, cfg: PrepConfig, *, rec_id: str = "",
                   resample_method: str = "fft") -> Windows:
    """Prepare a continuous recording (see :mod:`csbrain.data.preprocess` for the steps).

    Parameters
    ----------
    raw : mne.io.BaseRaw
        Preloaded; not modified.
    cfg : PrepConfig
    rec_id : str
        Recording id (``labels.mode="recording"`` looks its label up in it).
    resample_method : {"fft", "polyphase"}
        MNE resampling method (``polyphase`` is what chunked streaming uses).

    Returns
    -------
    Windows
    """
    sfreq = float(raw.info["sfreq"])
    duration = raw.n_times / sfreq
    if duration < cfg.windows.min_duration_s:
        raise RecordingError("too_short", f"recording lasts {duration:.1f} s, under "
                             f"windows.min_duration_s={cfg.windows.min_duration_s:g}")
    label = None
    if cfg.labels.mode == "recording":
        label = required_label(rec_id, cfg.labels)
    elif cfg.labels.mode == "trials":
        raise RecordingError("no_labels", "labels.mode='trials' needs trials with labels (.ts "
                             "files); this is a continuous recording: use labels.mode "
                             "'events' or 'recording'")
    raw = set_reference(raw, cfg.reference)
    raw, montage, source_channels = pick_channels(raw, cfg.channels)
    data = raw.get_data()
    bad_in = ~np.isfinite(data).all(axis=0)
    if bad_in.any():
        raw.apply_function(lambda v: np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0),
                           picks="all", channel_wise=False)
    del data
    fcfg, notes = adapt_filter(sfreq, cfg.filter)
    raw = resample_raw(filter_raw(raw, fcfg, copy=False), copy=False,  # raw is our copy
                      method=resample_method)
    unit = cfg.input.unit or "V"
    x = units.to_model_units(raw.get_data(), unit, np.float32)
    x, interpolated = check_signal(raw, x, cfg, unit)
    notes += [f"flat channel {c} interpolated" for c in interpolated]
    n = cfg.windows.n_samples
    if cfg.labels.mode == "events":
        starts, y = event_windows(raw, cfg.labels)
        if x.shape[1] < n:
            raise RecordingError("too_short", f"recording has {x.shape[1] / units.SFREQ:.2f} s, "
                                 f"shorter than one window of {cfg.windows.length_s:g} s")
    else:
        starts = window_starts(x.shape[1], cfg.windows)
        y = np.full(len(starts), -1 if label is None else label, dtype=np.int64)
    oob = (starts < 0) | (starts + n > x.shape[1])
    safe_starts = np.where(oob, 0, starts)
    w = _detrend(cut_windows(x, safe_starts, n), cfg.windows.detrend)
    nan_out = np.zeros(x.shape[1], dtype=bool)
    if bad_in.any():
        src = np.minimum((np.arange(x.shape[1]) * sfreq / units.SFREQ).astype(np.int64),
                         len(bad_in) - 1)
        width = max(1, int(np.ceil(sfreq / units.SFREQ)))
        nan_out = np.convolve(bad_in.astype(int), np.ones(width, int), "same")[src] > 0
    each: dict[str, int] = {}
    keep, counts = reject_windows(w, cfg.reject, nan=_mask_any(nan_out, safe_starts, n),
                                  bad=_mask_any(annotation_mask(raw), safe_starts, n),
                                  out_of_bounds=oob, each=each)
    return Windows(x=to_patches(w[keep]).astype(np.float32, copy=False), y=y[keep],
                   start=starts[keep], montage=montage, source_channels=list(source_channels),
                   rejected=counts, n_candidates=len(starts), source_sfreq=sfreq,
                   duration_s=duration, filter=dataclasses.asdict(fcfg),
                   interpolated=interpolated, notes=notes, flagged=each)


def _trial_labels(trials, labels: LabelConfig, rec_id: str) -> np.ndarray:
    n = len(trials.data)
    if labels.mode == "none":
        return np.full(n, -1, dtype=np.int64)
    if labels.mode == "recording":
        return np.full(n, required_label(rec_id, labels), dtype=np.int64)
    if labels.mode == "events":
        raise RecordingError("no_labels", "trials carry no annotations; use labels.mode="
                             "'trials' (labels of the trials) or 'recording'")
    if trials.labels is None:
        raise RecordingError("no_labels", "labels.mode='trials' but the trials have no labels "
                             "(.ts files need '@classLabel true ...')")
    classes = list(labels.names or trials.class_names or sorted(set(trials.labels)))
    unknown = sorted(set(trials.labels) - set(classes))
    if unknown:
        raise RecordingError("no_labels", f"trial labels {unknown} are not in labels.names "
                             f"{classes}")
    return np.array([classes.index(v) for v in trials.labels], dtype=np.int64)


def preprocess_trials(trials, cfg: PrepConfig, *, rec_id: str = "") -> Windows:
    """Prepare equal-length trials (:class:`~csbrain.data.readers.Trials`): one window each.

    The rate, channel names and unit come from the trials or, when they lack them, from
    ``cfg.input``. After resampling, a trial longer than ``windows.length_s`` is cropped to
    it; a shorter one is zero-padded at the end if ``windows.pad="zero"`` (else skipped).
    """
    sfreq = trials.sfreq or cfg.input.sfreq
    names = tuple(trials.ch_names or cfg.input.channels)
    unit = trials.unit or cfg.input.unit
    data = np.asarray(trials.data, dtype=np.float64)
    missing = [k for k, v in (("input.sfreq", sfreq), ("input.channels", names),
                              ("input.unit", unit)) if not v]
    if missing:
        raise RecordingError("bad_input", f"trials without {', '.join(missing)}: set "
                             f"{', '.join(m + '=...' for m in missing)} (the .ts format has none)")
    if len(names) != data.shape[1]:
        raise RecordingError("bad_input", f"input.channels has {len(names)} names but the "
                             f"trials have {data.shape[1]} channels")
    y = _trial_labels(trials, cfg.labels, rec_id)
    keep_names, montage = select_channels(names, ["eeg"] * len(names), cfg.channels)
    data = data[:, [names.index(k) for k in keep_names]]
    bad_in = ~np.isfinite(data).reshape(len(data), -1).all(axis=1)
    duration = data.shape[0] * data.shape[2] / float(sfreq)
    data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
    data = resample_array(filter_array(data, sfreq, cfg.filter), sfreq)
    w = units.to_model_units(data, unit, np.float32)
    if not cfg.input.allow_implausible and w.size:
        problem = amplitude_problem(w.transpose(1, 0, 2).reshape(w.shape[1], -1), unit)
        if problem:
            raise RecordingError("implausible_amplitude", problem)
    w = _detrend(w, cfg.windows.detrend)
    n = cfg.windows.n_samples
    if w.shape[2] < n:
        if cfg.windows.pad != "zero":
            raise RecordingError("too_short", f"trials last {w.shape[2] / units.SFREQ:.3f} s, "
                                 f"shorter than windows.length_s={cfg.windows.length_s:g}; set "
                                 f"windows.pad=zero to zero-pad them")
        w = np.concatenate([w, np.zeros((*w.shape[:2], n - w.shape[2]), np.float32)], axis=2)
    w = w[:, :, :n]
    each: dict[str, int] = {}
    keep, counts = reject_windows(w, cfg.reject, nan=bad_in, each=each)
    return Windows(x=to_patches(w[keep]), y=y[keep], start=np.flatnonzero(keep).astype(np.int64),
                   montage=montage, source_channels=list(keep_names), rejected=counts,
                   n_candidates=len(w), source_sfreq=float(sfreq),
                   duration_s=duration, flagged=each)
