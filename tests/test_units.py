"""The amplitude unit contract (csbrain.units): the one conversion to model units."""

from __future__ import annotations

import numpy as np
import pytest

from csbrain import units
from csbrain.units import from_model_units, to_model_units, unit_scale


def test_unit_conversion():
    x = np.array([1e-4, -50e-6])  # volts
    np.testing.assert_allclose(to_model_units(x, "V"), [1.0, -0.5], rtol=1e-6)
    np.testing.assert_allclose(to_model_units(np.array([100.0]), "uV"), [1.0], rtol=1e-6)
    assert to_model_units(x, "V", np.float32).dtype == np.float32
    assert to_model_units(x, "V").dtype == np.float64  # no dtype: numpy's result type
    np.testing.assert_allclose(from_model_units(to_model_units(x, "mV"), "mV"), x)


def test_unknown_unit_names_the_choices():
    with pytest.raises(ValueError, match=r"unit='volt' is not a known amplitude unit; expected "
                                         r"one of \['V', 'mV', 'model', 'nV', 'uV', 'µV'\]"):
        unit_scale("volt")


def test_one_home_for_the_conversion():
    """The data package converts with csbrain.units; it keeps no copy of its own."""
    from csbrain.data import preprocess

    assert not hasattr(preprocess, "to_model_units")
    assert units.UNIT_SCALES["uV"] == pytest.approx(1 / units.MICROVOLTS_PER_UNIT)
