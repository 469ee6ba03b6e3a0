"""Classical baselines on the same windows the model sees (for honest comparisons).

``riemann``: covariance (OAS shrinkage) -> tangent space -> logistic regression (pyRiemann);
``logvar``: log-variance of each channel -> standardise -> logistic regression.
A baseline is a row of :data:`BASELINES` (a factory of a scikit-learn pipeline).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from csbrain._checks import check_option


def _riemann():
    from pyriemann.estimation import Covariances
    from pyriemann.tangentspace import TangentSpace
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(Covariances(estimator="oas"), TangentSpace(metric="riemann"),
                         LogisticRegression(C=1.0, max_iter=2000))


def _log_variance(x: np.ndarray) -> np.ndarray:
    """``(n, C, T)`` -> ``(n, C)`` log-variance per channel."""
    return np.log(np.var(x, axis=-1) + 1e-12)


def _logvar():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    return make_pipeline(FunctionTransformer(_log_variance), StandardScaler(),
                         LogisticRegression(max_iter=2000))


BASELINES: dict[str, Callable[[], object]] = {"riemann": _riemann, "logvar": _logvar}


def fit_predict_baseline(name: str, x_train: np.ndarray, y_train: np.ndarray,
                         x_test: np.ndarray) -> np.ndarray:
    """Fit baseline ``name`` and return class probabilities on the test windows.

    Parameters
    ----------
    x_train, x_test : ndarray, shape (n, C, P, S) or (n, C, T)
        Windows in model units.
    y_train : ndarray, shape (n,)
        Integer labels.

    Returns
    -------
    proba : ndarray, shape (n_test, n_classes)
    """
    check_option("baseline", name, list(BASELINES))
    flat = [np.asarray(x, dtype=np.float64).reshape(len(x), x.shape[1], -1)
            for x in (x_train, x_test)]
    model = BASELINES[name]()
    model.fit(flat[0], np.asarray(y_train))
    return model.predict_proba(flat[1])
