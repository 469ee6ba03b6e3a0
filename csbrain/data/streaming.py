"""Chunked preparation of long continuous recordings with memory bounded by the chunk size.

:func:`stream_windows` reads a file lazily (MNE ``preload=False``), and for each chunk of
``chunk_s`` seconds reads the chunk plus margins on both sides, filters it at the source rate
(:func:`~csbrain.data.preprocess.filter_array`), resamples it to 200 Hz with the polyphase
method (:func:`~csbrain.data.preprocess.resample_array`; its kernel is finite, whereas MNE's
default FFT resampling is a whole-signal operation that no chunking can reproduce exactly: on
1/f test signals the two differ by ~1 % of the signal's peak), and cuts, detrends and rejects
the windows that *start* in the chunk's core. Chunk edges are multiples of the resampling
ratio's denominator, so the chunk's output samples fall on the whole file's; the margins are
longer than the filters' impulse responses plus the resampling kernel's reach, so the windows
equal those of :func:`~csbrain.data.windows.preprocess_raw` on the whole file with
``resample_method="polyphase"`` (to float32 rounding; tested). Files at 200 Hz need no
resampling and equal the default whole-file preparation exactly.

What needs the whole recording at once falls back to whole-file preparation (raising
:class:`NotStreamable`): event-locked windows, a re-reference, and the quality checks that look
at the whole signal (implausible amplitude, channels flat over the recording to interpolate)
when a chunk shows them.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from csbrain import units
from csbrain.data.prepconfig import FilterConfig, PrepConfig
from csbrain.data.preprocess import (
    RecordingError,
    adapt_filter,
    check_filter_rate,
    filter_array,
    pick_channels,
    resample_array,
)
from csbrain.data.quality import amplitude_problem, flat_channels
from csbrain.data.readers import ReadError, read_raw
from csbrain.data.windows import (
    _detrend,
    _mask_any,
    cut_windows,
    reject_windows,
    to_patches,
    window_starts,
)

logger = logging.getLogger(__name__)

__all__ = ["NotStreamable", "WindowChunk", "StreamInfo", "open_stream", "stream_windows",
           "margin_samples"]

#: Extra margin for the FFT resampling kernel's reach, in seconds at each side of a chunk.
RESAMPLE_MARGIN_S: float = 4.0


class NotStreamable(Exception):
    """The recording needs whole-file preparation (the message says why)."""


@dataclass
class WindowChunk:
    """Windows of one chunk: ``x`` ``(n, C, P, 200)`` float32, ``start`` (200 Hz samples)."""

    x: np.ndarray
    start: np.ndarray
    rejected: dict[str, int]
    done_s: float


@dataclass
class StreamInfo:
    """What is known before streaming: the picked raw (lazy), montage, rates and duration."""

    raw: object
    montage: object
    source_channels: list[str]
    sfreq: float
    n_times: int
    duration_s: float
    filter: FilterConfig
    notes: list[str]


def margin_samples(sfreq: float, cfg: FilterConfig) -> int:
    """Samples (source rate) of margin each side of a chunk: filter length + resampling reach.

    FIR: the length MNE designs (:func:`mne.filter.create_filter`, notch ones included). IIR
    (zero-phase, infinite response): ten time constants of the lowest edge, at least 10 s.
    """
    import mne

    n = 0
    if cfg.method == "fir":
        if cfg.l_freq is not None or cfg.h_freq is not None:
            n = len(mne.filter.create_filter(None, sfreq, cfg.l_freq, cfg.h_freq,
                                             verbose="error"))
        for f in cfg.notch:
            n = max(n, len(mne.filter.create_filter(None, sfreq, f + 1, f - 1,
                                                    verbose="error")))
    else:
        lowest = min([f for f in (cfg.l_freq, cfg.h_freq, *cfg.notch) if f] or [1.0])
        n = int(max(10.0, 10.0 / lowest) * sfreq)
    return n + int(RESAMPLE_MARGIN_S * sfreq)


def open_stream(path: str | Path, cfg: PrepConfig) -> StreamInfo:
    """Open ``path`` lazily and check it can be streamed (raises :class:`NotStreamable`)."""
    if cfg.labels.mode not in ("none", "recording", "trials"):
        raise NotStreamable(f"labels.mode={cfg.labels.mode!r} cuts event-locked windows")
    if cfg.reference:
        raise NotStreamable("a re-reference is applied to the whole recording")
    try:
        raw = read_raw(path, allow_truncated=cfg.input.allow_truncated, preload=False)
    except (ReadError, OSError) as err:
        raise RecordingError("unreadable", str(err)) from None
    sfreq = float(raw.info["sfreq"])
    duration = raw.n_times / sfreq
    if duration < cfg.windows.min_duration_s:
        raise RecordingError("too_short", f"recording lasts {duration:.1f} s, under "
                             f"windows.min_duration_s={cfg.windows.min_duration_s:g}")
    raw, montage, source_channels = pick_channels(raw, cfg.channels)
    fcfg, notes = adapt_filter(sfreq, cfg.filter)
    check_filter_rate(sfreq, fcfg)
    return StreamInfo(raw, montage, list(source_channels), sfreq, raw.n_times, duration, fcfg,
                      notes)


def _bad_intervals(raw, sfreq: float) -> np.ndarray:
    """``(k, 2)`` [start, stop) of 'bad*' annotations in 200 Hz samples of the resampled raw."""
    import mne

    ann = raw.annotations
    bad = np.array([d.lower().startswith("bad") for d in ann.description], dtype=bool)
    if not bad.any():
        return np.zeros((0, 2), dtype=np.int64)
    # an empty 200 Hz raw with the resampled raw's time origin gives MNE's own onset rounding
    ref = mne.io.RawArray(np.zeros((1, 1)), mne.create_info(1, float(units.SFREQ)),
                          first_samp=int(round(raw.first_samp * units.SFREQ / sfreq)),
                          verbose="error")
    ref.set_meas_date(raw.info["meas_date"])
    kw = {"use_rounding": True, "origin": ann.orig_time}
    a = ref.time_as_index(ann.onset[bad], **kw)
    b = ref.time_as_index(ann.onset[bad] + ann.duration[bad], **kw)
    return np.stack([np.maximum(a, 0), np.maximum(np.maximum(b, a + 1), 0)], 1).astype(np.int64)


def stream_windows(info: StreamInfo, cfg: PrepConfig, *, chunk_s: float = 600.0
                   ) -> Iterator[WindowChunk]:
    """Yield the kept windows of a recording chunk by chunk (see the module docstring).

    Parameters
    ----------
    info : StreamInfo
        From :func:`open_stream`.
    cfg : PrepConfig
    chunk_s : float
        Core length of a chunk in seconds (rounded to the resampling grid).

    Yields
    ------
    WindowChunk
        Windows ``(n, C, P, 200)`` float32 with their start samples at 200 Hz, in order.
    """
    sfreq, n_src = info.sfreq, info.n_times
    ratio = Fraction(units.SFREQ / sfreq).limit_denominator(10_000)
    up, down = ratio.numerator, ratio.denominator
    if abs(up / down - units.SFREQ / sfreq) > 1e-9:
        raise NotStreamable(f"sampling rate {sfreq:g} Hz has no small ratio to 200 Hz")
    n_out = int(round(n_src * up / down))
    n_win = cfg.windows.n_samples
    starts = window_starts(n_out, cfg.windows)
    unit = cfg.input.unit or "V"
    bad = _bad_intervals(info.raw, sfreq)
    margin = math.ceil(margin_samples(sfreq, info.filter) / down) * down
    win_src = math.ceil(n_win * down / up / down + 1) * down
    core = max(down, int(round(chunk_s * sfreq / down)) * down)
    for a in range(0, n_src, core):
        b = min(a + core, n_src)
        a_out, b_out = a * up // down, (b * up // down if b < n_src else n_out)
        mine = starts[(starts >= a_out) & (starts < b_out)]
        if not len(mine):
            continue
        s0, s1 = max(0, a - margin), min(n_src, b + win_src + margin)
        data = info.raw.get_data(start=s0, stop=s1)
        bad_in = ~np.isfinite(data).all(axis=0)
        if bad_in.any():
            data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
        y = resample_array(filter_array(data, sfreq, info.filter), sfreq, method="polyphase")
        del data
        x = units.to_model_units(y, unit, np.float32)
        _check_chunk(x, info, cfg, unit)
        o0 = s0 * up // down
        rel = mine - o0
        if rel[-1] + n_win > x.shape[1]:
            raise AssertionError("streaming margin too short for a window")  # a bug, not input
        w = _detrend(cut_windows(x, rel, n_win), cfg.windows.detrend)
        nan = np.zeros(len(mine), dtype=bool)
        if bad_in.any():
            src = np.minimum((np.arange(x.shape[1]) * sfreq / units.SFREQ).astype(np.int64),
                             len(bad_in) - 1)
            width = max(1, int(np.ceil(sfreq / units.SFREQ)))
            nan_out = np.convolve(bad_in.astype(int), np.ones(width, int), "same")[src] > 0
            nan = _mask_any(nan_out, rel, n_win)
        hit = np.zeros(len(mine), dtype=bool)
        for s, e in bad:
            hit |= (mine < e) & (mine + n_win > s)
        keep, counts = reject_windows(w, cfg.reject, nan=nan, bad=hit)
        yield WindowChunk(x=to_patches(w[keep]).astype(np.float32, copy=False),
                          start=mine[keep], rejected=counts, done_s=b / sfreq)


def _check_chunk(x: np.ndarray, info: StreamInfo, cfg: PrepConfig, unit: str) -> None:
    """Whole-signal quality checks that a chunk trips send the file to whole-file preparation."""
    if not cfg.input.allow_implausible and amplitude_problem(x, unit):
        raise NotStreamable("a chunk's amplitude looks implausible; checking the whole file")
    if (cfg.reject.flat_std is not None and cfg.reject.flat_channels == "interpolate"
            and flat_channels(x, list(info.montage.channels), cfg.reject.flat_std)):
        raise NotStreamable("a channel is flat over a chunk; checking the whole file")


def unlabelled(cfg: PrepConfig) -> PrepConfig:
    """``cfg`` with ``labels.mode="none"`` (prediction windows carry no label)."""
    return dataclasses.replace(cfg, labels=dataclasses.replace(cfg.labels, mode="none"))
