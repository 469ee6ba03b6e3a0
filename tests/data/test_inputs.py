"""`csbrain.data.to_model_input`: MNE objects and arrays with rate and unit -> model input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from csbrain import CSBrainConfig, CSBrainForClassification, units
from csbrain.data import to_model_input
from tests.cli.test_prepare_own_recordings import HEADSET_14
from tests.data.conftest import make_raw


def test_raw_at_128_hz_in_volts_becomes_windows_a_model_reads():
    raw = make_raw(names=HEADSET_14, sfreq=128.0, seconds=9.5)
    inp = to_model_input(raw, window_s=4)
    assert inp.x.shape == (2, 14, 4, 200) and inp.x.dtype == np.float32
    assert inp.dropped_s == pytest.approx(1.5)
    assert inp.montage.canonical == tuple(HEADSET_14)
    import mne

    ref = mne.filter.resample(raw.get_data(), up=200 / 128, verbose="error") * 1e4
    np.testing.assert_allclose(inp.x[1].reshape(14, -1), ref[:, 800:1600], rtol=1e-4,
                               atol=1e-6)
    model = CSBrainForClassification(inp.montage, CSBrainConfig.from_preset("small"),
                                     n_outputs=2)
    assert model(torch.from_numpy(inp.x)).shape == (2, 2)


def test_arrays_epochs_and_units():
    rng = np.random.default_rng(0)
    trials = rng.standard_normal((3, 2, 250)) * 20.0  # µV, 250 Hz, 1 s each
    inp = to_model_input(trials, sfreq=250, ch_names=["C3", "C4"], unit="uV")
    assert inp.x.shape == (3, 2, 1, 200) and inp.dropped_s == 0
    assert np.abs(inp.x).mean() == pytest.approx(20.0 / units.MICROVOLTS_PER_UNIT * 0.8, rel=0.2)
    import mne

    epochs = mne.EpochsArray(trials * 1e-6, mne.create_info(["C3", "C4"], 250.0, "eeg"),
                             verbose="error")
    np.testing.assert_allclose(to_model_input(epochs).x, inp.x, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    ({"sfreq": 128, "ch_names": ["Cz"], "unit": "uV"}, "the typical channel varies by"),
    ({"sfreq": 128, "ch_names": ["Cz"]}, "unit=None: an array needs unit="),
    ({"ch_names": ["Cz"], "unit": "V"}, "sfreq=None: an array needs sfreq="),
    ({"sfreq": 128, "ch_names": ["Cz", "Pz"], "unit": "V"}, "ch_names has 2 name(s) but data "
                                                           "has 1 channels"),
    ({"sfreq": 128, "ch_names": ["Cz"], "unit": "V", "window_s": 60},
     "shorter than one window of 60 s"),
])
def test_bad_arrays_are_one_clear_error(kwargs, message):
    volts = np.random.default_rng(0).standard_normal((1, 128 * 10)) * 1e-5
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        to_model_input(volts, **kwargs)



def test_implausible_amplitude_can_be_confirmed():
    volts = np.random.default_rng(0).standard_normal((1, 128 * 10)) * 1e-5
    with pytest.raises(ValueError, match=r"values in volts read as µV\?\); set unit= to the "
                                         r"unit of the numbers, or allow_implausible=True"):
        to_model_input(volts, sfreq=128, ch_names=["Cz"], unit="uV", window_s=5)
    inp = to_model_input(volts, sfreq=128, ch_names=["Cz"], unit="uV", window_s=5,
                         allow_implausible=True)
    assert inp.x.shape == (2, 1, 5, 200)
