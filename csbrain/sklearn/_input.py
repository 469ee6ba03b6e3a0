"""Trials in, model windows out: the input contract of the scikit-learn estimators.

A thin layer over :func:`csbrain.data.inputs.to_model_input` (resampling to 200 Hz with MNE,
conversion from ``unit`` to model units, the amplitude check, whole 1 s patches with the
trailing part dropped): ``X`` must be trials, an array ``(n_trials, n_channels, n_times)`` with
the estimator's ``sfreq``, ``ch_names`` and ``unit``, or an ``mne.Epochs`` (rate, EEG channel
names and volts read from it; ``sfreq`` / ``ch_names``, if set, must agree). No filtering:
band-pass in the pipeline before (e.g. a MOABB paradigm's ``fmin`` / ``fmax``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from csbrain._checks import CSBrainError

__all__ = ["trial_windows"]


def _is_epochs(X: Any) -> bool:
    if not type(X).__module__.startswith("mne"):
        return False
    import mne

    return isinstance(X, mne.BaseEpochs)


def _check_epochs_agree(epochs: Any, sfreq: float | None, ch_names: Sequence[str] | None
                        ) -> None:
    import mne

    names = [epochs.ch_names[i] for i in mne.pick_types(epochs.info, eeg=True, exclude=[])]
    if ch_names is not None and list(ch_names) != names:
        raise CSBrainError(f"ch_names={list(ch_names)} differ from the EEG channels of X "
                           f"(mne.Epochs) {names}; leave ch_names=None with Epochs")
    rate = float(epochs.info["sfreq"])
    if sfreq is not None and float(sfreq) != rate:
        raise CSBrainError(f"sfreq={sfreq} differs from the Epochs' rate {rate:g} Hz; leave "
                           f"sfreq=None with Epochs")


def trial_windows(X: Any, *, sfreq: float | None, ch_names: Sequence[str] | None,
                  unit: str = "V", allow_implausible: bool = False):
    """Validate trials and turn them into model windows.

    Parameters
    ----------
    X : array_like, shape (n_trials, n_channels, n_times) | mne.Epochs
        Finite values in ``unit`` (Epochs: volts, whatever ``unit`` says).
    sfreq : float | None
        Sampling rate of an array ``X`` (Hz).
    ch_names : sequence of str | None
        Channel names of an array ``X``, in its order.
    unit : str
        Amplitude unit of an array ``X`` (:data:`csbrain.units.UNIT_SCALES`); ``"V"`` as MNE
        gives it (MOABB's arrays are in µV: ``"uV"``).
    allow_implausible : bool
        Keep data whose amplitude is implausible for EEG in ``unit``.

    Returns
    -------
    csbrain.data.inputs.ModelInput
        ``x`` ``(n_trials, n_channels, n_patches, 200)`` float32 in model units, ``montage``
        of the channels, ``dropped_s`` (seconds per trial that did not fill a patch).
    """
    from csbrain.data.inputs import to_model_input

    if _is_epochs(X):
        _check_epochs_agree(X, sfreq, ch_names)
    elif np.ndim(X) != 3:
        raise CSBrainError(f"X has shape {np.shape(X)}; expected trials (n_trials, n_channels, "
                           f"n_times), or mne.Epochs")
    return to_model_input(X, sfreq=sfreq, ch_names=ch_names, unit=unit,
                          allow_implausible=allow_implausible)
