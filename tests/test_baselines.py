"""Classical baselines learn a planted effect and refuse unknown names."""

import numpy as np
import pytest

from csbrain.baselines import fit_predict_baseline


@pytest.mark.parametrize("name", ["riemann", "logvar"])
def test_baseline_learns_a_variance_effect(name):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 6, 2, 200))
    y = rng.integers(0, 2, 120)
    x[y == 1, 2] *= 1.6  # class 1: more power on one channel
    proba = fit_predict_baseline(name, x[:80], y[:80], x[80:])
    assert proba.shape == (40, 2)
    assert (proba.argmax(1) == y[80:]).mean() > 0.85


def test_unknown_baseline():
    with pytest.raises(ValueError, match="baseline='svm' is not allowed"):
        fit_predict_baseline("svm", np.zeros((2, 1, 4)), np.array([0, 1]), np.zeros((1, 1, 4)))
