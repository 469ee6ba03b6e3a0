"""Released-protocol steps a recipe can ask for (used by :mod:`csbrain.benchmark.prepare`).

Two recipe fields, honoured for any dataset (no per-dataset code):

``segment_filter``
    ``{"kind": "butter_causal", "order": N, "lead_s": L, "resample": "fft"}``: instead of
    filtering and resampling the continuous recording, every labelled segment is processed on
    its own, as scripts that work per trial do: the signal from ``L`` seconds before the
    segment's onset to its end is band-passed with a causal Butterworth of order ``N`` over the
    recipe's ``filter`` band (``scipy.signal.butter`` + ``lfilter``, zero initial state), the
    lead-in is dropped, and the segment is resampled to 200 Hz with ``scipy.signal.resample``
    (FFT over the segment) before its windows are cut. ``"kind": "none"`` skips the filter.
    ``"resample": "fft_window"``: every segment is one window, resampled by FFT to exactly
    ``window_s * 200`` samples whatever its length (scripts that store raw windows and resample
    each when it is loaded, short ones at a file's end included, which are thereby stretched).
``window_resample``
    ``{"via_sfreq": R, "npad": "auto"}``: the recording is filtered as a whole (the recipe's
    ``filter``) at its own rate; each window is then cut at that rate (``int(t * sfreq)``
    sample positions, as scripts that slice a filtered ``mne.io.Raw`` do), resampled to ``R`` Hz
    with MNE's FFT resampling (``Raw.resample(R, npad=...)``; nothing when the rate is ``R``)
    and from there to 200 Hz with ``scipy.signal.resample`` over the window (a loader that
    resamples each stored slice). ``normalize`` statistics are then taken at ``R`` Hz.
``normalize``
    ``{"kind": "dataset_zscore", "eps": E}``: every window, in volts, becomes
    ``(x - mean) / (std + E)`` with per-channel statistics that ``prepare`` computes over every
    recording of the copy (all splits) as the mean over windows of each window's per-channel
    mean and (population) standard deviation, and stores in ``benchmark.json``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from csbrain import units
from csbrain.benchmark.recipes import BenchmarkError

__all__ = ["segment_windows", "resampled_windows", "dataset_stats", "apply_stats"]

_FILTER_KINDS = ("butter_causal", "none")
_RESAMPLE = ("fft", "fft_window")
_NORMALIZE_KINDS = ("dataset_zscore",)


def segment_windows(rows: np.ndarray, sfreq: float, segments: Iterable[Any],
                    recipe: dict[str, Any]) -> tuple[list[np.ndarray], list[int], list[Any]]:
    """Windows of every segment, each segment filtered causally and resampled on its own.

    Parameters
    ----------
    rows : ndarray, shape (n_channels, n_samples)
        The picked (and re-referenced) signals at ``sfreq``, any linear unit.
    sfreq : float
        Sampling rate of ``rows``, Hz.
    segments : iterable of Segment
        Labelled spans (``onset_s``, ``duration_s``, ``label``).
    recipe : dict
        A recipe with ``segment_filter``, ``filter`` (``l_freq``, ``h_freq``; no notch) and
        ``window_s``.

    Returns
    -------
    windows : list of ndarray, shape (n_channels, window_s * 200)
    starts : list of int
        Window starts in samples at 200 Hz from the recording's start.
    labels : list
        The segment label of each window.
    """
    from scipy.signal import butter, lfilter, resample

    spec, f = recipe["segment_filter"], recipe["filter"]
    if spec.get("kind") not in _FILTER_KINDS or spec.get("resample") not in _RESAMPLE:
        raise BenchmarkError(f"recipe {recipe['name']!r}: segment_filter {spec} is not "
                             f"understood; kinds {list(_FILTER_KINDS)}, resample "
                             f"{list(_RESAMPLE)}")
    butter_kind = spec["kind"] == "butter_causal"
    if butter_kind and (f["l_freq"] is None or f["h_freq"] is None or f["notch"]):
        raise BenchmarkError(f"recipe {recipe['name']!r}: segment_filter needs a band-pass "
                             f"filter (l_freq and h_freq) and no notch")
    if not butter_kind and (f["l_freq"] is not None or f["h_freq"] is not None or f["notch"]):
        raise BenchmarkError(f"recipe {recipe['name']!r}: segment_filter kind 'none' needs "
                             f"filter l_freq and h_freq null and no notch")
    if butter_kind:
        nyq = 0.5 * sfreq
        b, a = butter(int(spec["order"]), [f["l_freq"] / nyq, f["h_freq"] / nyq], btype="band")
    lead = int(round(float(spec.get("lead_s", 0.0)) * sfreq))
    n = int(round(recipe["window_s"] * units.SFREQ))
    one_window = spec["resample"] == "fft_window"
    windows, starts, labels = [], [], []
    for seg in segments:
        s0 = int(round(seg.onset_s * sfreq))
        length = int(round(seg.duration_s * sfreq))
        if s0 - lead < 0 or s0 + length > rows.shape[1] or length <= 0:
            continue
        x = rows[:, s0 - lead:s0 + length]
        if butter_kind:
            x = lfilter(b, a, x, axis=-1)
        x = x[:, lead:]
        t0 = int(round(seg.onset_s * units.SFREQ))
        if one_window:                    # (C, length) -> (C, n), whatever the length
            windows.append(resample(x, n, axis=-1))
            starts.append(t0)
            labels.append(seg.label)
            continue
        x = resample(x, int(round(length * units.SFREQ / sfreq)), axis=-1)
        for k in range(int(seg.duration_s / recipe["window_s"] + 1e-9)):
            if (k + 1) * n <= x.shape[1]:
                windows.append(x[:, k * n:(k + 1) * n])
                starts.append(t0 + k * n)
                labels.append(seg.label)
    return windows, starts, labels


def resampled_windows(rows: np.ndarray, sfreq: float, segments: Iterable[Any],
                      recipe: dict[str, Any]
                      ) -> tuple[list[np.ndarray], list[int], list[Any], list[np.ndarray]]:
    """Windows of every segment cut at ``sfreq`` and resampled window by window
    (``window_resample``, see the module docstring).

    Parameters
    ----------
    rows : ndarray, shape (n_channels, n_samples)
        The filtered signals at ``sfreq``, any linear unit.
    sfreq : float
    segments : iterable of Segment
    recipe : dict
        A recipe with ``window_resample`` and ``window_s``.

    Returns
    -------
    windows : list of ndarray, shape (n_channels, window_s * 200)
    starts : list of int
        Window starts in samples at 200 Hz (rounded from the source position).
    labels : list
    via : list of ndarray, shape (n_channels, window_s * via_sfreq)
        The same windows at ``via_sfreq`` (where ``normalize`` takes its statistics).
    """
    import mne
    from scipy.signal import resample

    spec = recipe["window_resample"]
    via_sfreq = float(spec["via_sfreq"])
    width = int(recipe["window_s"] * sfreq)
    n = int(round(recipe["window_s"] * units.SFREQ))
    windows, starts, labels, via = [], [], [], []
    for seg in segments:                 # positions as int(t * sfreq), t from the label file
        first = int(seg.onset_s * sfreq)
        stop = int(round(seg.onset_s + seg.duration_s, 9) * sfreq)  # the file's stop time
        for s0 in range(first, stop, width):
            if s0 + width > stop or s0 + width > rows.shape[1]:
                break
            x = rows[:, s0:s0 + width]
            if via_sfreq != sfreq:
                x = mne.filter.resample(x, up=via_sfreq, down=sfreq, npad=spec["npad"],
                                        method="fft", verbose="error")
            via.append(x)
            windows.append(resample(x, n, axis=-1))
            starts.append(int(round(s0 * units.SFREQ / sfreq)))
            labels.append(seg.label)
    return windows, starts, labels, via


def _to_volts(x: np.ndarray, recipe: dict[str, Any]) -> np.ndarray:
    return np.asarray(x, dtype=np.float64) / (1e6 * float(recipe["scale_uV"]))


def dataset_stats(windows: Iterable[np.ndarray], recipe: dict[str, Any]) -> dict[str, Any]:
    """Per-channel statistics over windows, as ``normalize`` defines them.

    Parameters
    ----------
    windows : iterable of ndarray, shape (n, C, P, 200) or (n, C, T)
        The windows of each recording in model units (``recipe["scale_uV"]``), at any rate.
    recipe : dict
        A recipe with ``normalize`` and ``scale_uV``.

    Returns
    -------
    dict
        ``mean`` and ``std`` (lists of C floats, volts: the mean over all windows of each
        window's channel mean and channel standard deviation), ``n_windows``.
    """
    spec = recipe["normalize"]
    if spec.get("kind") not in _NORMALIZE_KINDS:
        raise BenchmarkError(f"recipe {recipe['name']!r}: normalize {spec} is not understood; "
                             f"kinds {list(_NORMALIZE_KINDS)}")
    total_mean = total_std = None
    count = 0
    for x in windows:
        if not len(x):
            continue
        v = _to_volts(x, recipe).reshape(x.shape[0], x.shape[1], -1)
        m, s = v.mean(axis=-1).sum(axis=0), v.std(axis=-1).sum(axis=0)
        if total_mean is not None and len(m) != len(total_mean):
            raise BenchmarkError(f"recipe {recipe['name']!r}: recordings with {len(m)} and "
                                 f"{len(total_mean)} channels cannot share statistics")
        total_mean = m if total_mean is None else total_mean + m
        total_std = s if total_std is None else total_std + s
        count += x.shape[0]
    if not count:
        raise BenchmarkError(f"no labelled window in the {recipe['title']} copy to compute "
                             f"normalisation statistics from")
    return {"kind": spec["kind"], "unit": "V", "eps": float(spec["eps"]),
            "mean": (total_mean / count).tolist(), "std": (total_std / count).tolist(),
            "n_windows": count}


def apply_stats(x: np.ndarray, stats: dict[str, Any], recipe: dict[str, Any]) -> np.ndarray:
    """``(x_volts - mean) / (std + eps)`` per channel.

    Parameters
    ----------
    x : ndarray, shape (n, C, P, 200)
        Windows in model units (``recipe["scale_uV"]``).
    stats : dict
        From :func:`dataset_stats`.
    recipe : dict

    Returns
    -------
    ndarray, shape (n, C, P, 200), float32
    """
    mu = np.asarray(stats["mean"])[None, :, None, None]
    sigma = np.asarray(stats["std"])[None, :, None, None]
    return ((_to_volts(x, recipe) - mu) / (sigma + stats["eps"])).astype(np.float32)
