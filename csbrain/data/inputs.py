"""Your own signal in memory -> model input: :func:`to_model_input`.

An MNE ``Raw`` or ``Epochs``, or an array with its sampling rate, channel names and unit,
becomes windows ``(n, C, P, 200)`` in model units (100 µV) at 200 Hz, with the
:class:`~csbrain.montage.Montage` of its channels: resampled with MNE, converted from the
unit, cut into whole 1-s patches. An amplitude implausible for EEG in the stated unit (volts
given as µV or the reverse, :data:`csbrain.data.quality.PLAUSIBLE_UV`) is refused unless
confirmed. No filtering: filter before, or prepare files with ``csbrain prepare``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from csbrain import units
from csbrain._checks import CSBrainError, CSBrainTypeError, check_float
from csbrain.data.preprocess import resample_array
from csbrain.data.quality import amplitude_problem
from csbrain.montage import Montage

__all__ = ["ModelInput", "to_model_input"]


@dataclass(frozen=True)
class ModelInput:
    """Windows ready for a csbrain model.

    Attributes
    ----------
    x : ndarray of float32, shape (n, C, P, 200)
        Model units at 200 Hz; ``torch.from_numpy(x)`` is a model input.
    montage : csbrain.montage.Montage
        Of the channels, in ``x``'s order (build or check a model with it).
    dropped_s : float
        Seconds at the end of each trial (or of the recording) that did not fill a window.
    """

    x: np.ndarray
    montage: Montage
    dropped_s: float


def _mne_data(data: Any) -> tuple[np.ndarray, float, list[str], bool] | None:
    """``(values in volts, sfreq, EEG channel names, is_trials)`` of an MNE object, else None."""
    if not type(data).__module__.startswith("mne"):
        return None
    import mne

    if not isinstance(data, (mne.io.BaseRaw, mne.BaseEpochs)):
        return None
    picks = mne.pick_types(data.info, eeg=True, exclude=[])
    if not len(picks):
        raise CSBrainError(f"data ({type(data).__name__}) has no EEG channel (types "
                           f"{sorted(set(data.get_channel_types()))}); CSBrain reads EEG")
    names = [data.ch_names[i] for i in picks]
    return data.get_data(picks=picks), float(data.info["sfreq"]), names, isinstance(
        data, mne.BaseEpochs)


def _array(data: Any, sfreq: Any, ch_names: Sequence[str] | None
           ) -> tuple[np.ndarray, float, list[str], bool]:
    x = np.asarray(data)
    if x.dtype.kind not in "fiu":
        raise CSBrainTypeError(f"data has dtype {x.dtype}; expected real numbers, shape "
                               f"(n_channels, n_times) or (n_trials, n_channels, n_times)")
    if x.ndim not in (2, 3):
        raise CSBrainError(f"data has shape {x.shape}; expected (n_channels, n_times) or "
                           f"(n_trials, n_channels, n_times), or an mne Raw / Epochs")
    if sfreq is None:
        raise CSBrainError("sfreq=None: an array needs sfreq= (its sampling rate in Hz)")
    n_ch = x.shape[-2]
    if ch_names is None or isinstance(ch_names, str) or len(ch_names) != n_ch:
        got = "None" if ch_names is None else f"{1 if isinstance(ch_names, str) else len(ch_names)}"
        raise CSBrainError(f"ch_names has {got} name(s) but data has {n_ch} channels; pass one "
                           f"name per channel, e.g. ['Fz', 'C3', ...]")
    return x, check_float("sfreq", sfreq, min_value=0.0, inclusive=False), list(ch_names), \
        x.ndim == 3


def to_model_input(data: Any, *, sfreq: float | None = None,
                   ch_names: Sequence[str] | None = None, unit: str | None = None,
                   window_s: float | None = None, allow_implausible: bool = False
                   ) -> ModelInput:
    """Turn a signal in memory into model input (see the module docstring).

    Parameters
    ----------
    data : mne.io.Raw | mne.Epochs | array_like
        Continuous ``(n_channels, n_times)`` or trials ``(n_trials, n_channels, n_times)``.
        MNE objects give their rate, EEG channel names and volts.
    sfreq : float | None
        Sampling rate of an array, Hz.
    ch_names : sequence of str | None
        Channel names of an array, in its order (any alias: ``T3``, ``EEG FP1-REF``).
    unit : str | None
        Unit of an array's values (:data:`csbrain.units.UNIT_SCALES`: ``"V"``, ``"uV"``...);
        required for arrays, ignored for MNE objects (volts).
    window_s : float | None
        Window length in whole seconds. Continuous data is cut into consecutive windows of
        this length (None: 30 s, the pretraining length); trials are cropped to it (None:
        their whole 1-s patches).
    allow_implausible : bool
        Keep data whose amplitude is implausible for EEG in ``unit``.

    Returns
    -------
    ModelInput
        ``x`` of shape ``(n, C, P, 200)``: ``n`` windows (trials), ``P`` patches.

    Raises
    ------
    CSBrainError
        Missing rate, names or unit; too short for one window; an implausible amplitude.

    Examples
    --------
    >>> inp = to_model_input(raw, window_s=4)                    # doctest: +SKIP
    >>> model = CSBrainForClassification(inp.montage, n_outputs=2)  # doctest: +SKIP
    >>> logits = model(torch.from_numpy(inp.x))                  # doctest: +SKIP
    """
    mne_data = _mne_data(data)
    if mne_data is not None:
        x, rate, names, trials = mne_data
        unit = "V"
    else:
        if unit is None:
            raise CSBrainError(f"unit=None: an array needs unit=, the unit of its values; "
                               f"expected one of {sorted(units.UNIT_SCALES)}")
        x, rate, names, trials = _array(data, sfreq, ch_names)
    montage = Montage.from_names(names)
    if x.shape[0] == 0 or x.shape[-1] == 0:
        raise CSBrainError(f"data of shape {x.shape} is empty; expected at least one sample")
    if not np.isfinite(x).all():
        raise CSBrainError("data has NaN or Inf values; clean or drop them first")
    x = units.to_model_units(resample_array(x, rate), unit, np.float32)
    if not allow_implausible:
        problem = amplitude_problem(x.reshape(-1, x.shape[-1]) if trials else x, unit)
        if problem:
            raise CSBrainError(problem.replace("input.unit", "unit=").replace(
                "input.allow_implausible=true", "allow_implausible=True"))
    if window_s is not None:
        n = int(round(check_float("window_s", window_s, min_value=1.0) * units.SFREQ))
        if n % units.PATCH_SIZE:
            raise CSBrainError(f"window_s={window_s} is not a whole number of seconds")
    else:
        n = None
    if trials:
        n = n or (x.shape[-1] // units.PATCH_SIZE) * units.PATCH_SIZE
        windows = x[..., :n]
    else:
        n = n or int(30 * units.SFREQ)
        count = x.shape[-1] // n
        windows = x[:, :count * n].reshape(x.shape[0], count, n).transpose(1, 0, 2)
    if n == 0 or windows.shape[-1] < n or len(windows) == 0:
        raise CSBrainError(f"data lasts {x.shape[-1] / units.SFREQ:.2f} s at {units.SFREQ:g} Hz, "
                           f"shorter than one window of {(n or units.PATCH_SIZE) / units.SFREQ:g}"
                           f" s; pass a shorter window_s")
    dropped = (x.shape[-1] - (n if trials else len(windows) * n)) / units.SFREQ
    out = np.ascontiguousarray(windows.reshape(*windows.shape[:2], -1, units.PATCH_SIZE))
    return ModelInput(out.astype(np.float32, copy=False), montage, float(dropped))
