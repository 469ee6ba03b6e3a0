"""``method="linear"``: a scikit-learn linear model on cached frozen embeddings.

The frozen backbone embeds every window once (mean of its tokens,
:func:`csbrain.engine.inference.embed_dataset`); the features are standardised
(``StandardScaler`` fitted on the training split) and a logistic regression (classification,
lbfgs, multinomial for several classes) or a ridge regression (regression) is fitted for each
regularisation strength of :data:`STRENGTHS` (logistic ``C = 1 / strength``, ridge
``alpha = strength``). The strength is chosen by the run's selection metric on the validation
split only (ties: the stronger regularisation); without validation windows it is 1.

:func:`fold_into_head` writes the chosen model, scaler folded in, into a ``mean_bn`` head (its
BatchNorm the identity), so the saved task model gives the scikit-learn outputs (logits for
classification) and is read back by :func:`csbrain.models.load_model` like any other run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from csbrain.engine.metrics import metric_mode

logger = logging.getLogger(__name__)

__all__ = ["STRENGTHS", "LinearFit", "fit_linear", "linear_outputs", "fold_into_head"]

#: Regularisation strengths tried (logistic ``C = 1 / s``, ridge ``alpha = s``).
STRENGTHS: tuple[float, ...] = tuple(10.0 ** k for k in range(-3, 4))
#: Logit of a class absent from the training split (it is never predicted).
_ABSENT_LOGIT = -1e4


@dataclass
class LinearFit:
    """A fitted scaler + linear model and how its strength was chosen.

    Attributes
    ----------
    scaler : sklearn.preprocessing.StandardScaler
    estimator : LogisticRegression | Ridge
    strength : float
        The chosen regularisation strength.
    scores : dict of float to float | None
        Validation selection metric of each strength (None: undefined).
    """

    scaler: Any
    estimator: Any
    strength: float
    scores: dict[float, float | None] = field(default_factory=dict)


def _estimator(task: str, strength: float) -> Any:
    from sklearn.linear_model import LogisticRegression, Ridge

    if task == "regression":
        return Ridge(alpha=strength)
    return LogisticRegression(C=1.0 / strength, max_iter=2000)


def linear_outputs(fit: LinearFit, x: np.ndarray, task: str, n_outputs: int) -> np.ndarray:
    """Outputs of ``fit`` on features ``x`` ``(n, D)``: ``(n, n_outputs)`` logits (classes absent
    from training: a very low logit) or regression values, float64."""
    z = fit.scaler.transform(x)
    if task == "regression":
        return np.asarray(fit.estimator.predict(z), dtype=np.float64).reshape(len(x), n_outputs)
    scores = np.asarray(fit.estimator.decision_function(z), dtype=np.float64)
    if task == "binary":
        return scores.reshape(len(x), 1)
    out = np.full((len(x), n_outputs), _ABSENT_LOGIT)
    out[:, fit.estimator.classes_.astype(int)] = scores
    return out


def fit_linear(train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray] | None,
               task: str, n_outputs: int, select: str | None,
               metrics: Callable[[np.ndarray, np.ndarray], dict[str, Any]]) -> LinearFit:
    """Fit the scaler and one linear model per strength; keep the best on validation.

    Parameters
    ----------
    train : (ndarray (n, D), ndarray (n,))
        Training features and labels.
    val : (ndarray (m, D), ndarray (m,)) | None
        Validation features and labels; None (or ``select`` None): strength 1.
    task : {"multiclass", "binary", "regression"}
    n_outputs : int
    select : str | None
        Key of ``metrics`` to select on (its direction from
        :func:`csbrain.engine.metrics.metric_mode`).
    metrics : callable
        ``metrics(outputs (m, n_outputs), y (m,))`` -> dict (the objective's metrics).

    Returns
    -------
    LinearFit
    """
    from sklearn.preprocessing import StandardScaler

    x, y = train
    scaler = StandardScaler().fit(x)
    z = scaler.transform(x)
    y_fit = y.astype(np.float64) if task == "regression" else y.astype(int)
    if val is None or select is None or not len(val[0]):
        return LinearFit(scaler, _estimator(task, 1.0).fit(z, y_fit), 1.0)
    mode = metric_mode(select)
    best: LinearFit | None = None
    scores: dict[float, float | None] = {}
    for strength in sorted(STRENGTHS, reverse=True):          # ties keep the stronger one
        fit = LinearFit(scaler, _estimator(task, strength).fit(z, y_fit), strength)
        value = metrics(linear_outputs(fit, val[0], task, n_outputs), val[1]).get(select)
        scores[strength] = None if value is None else float(value)
        if value is None or np.isnan(value):
            continue
        if best is None or (value > scores[best.strength] if mode == "max"
                            else value < scores[best.strength]):
            best = fit
    if best is None:
        logger.warning("validation %s undefined for every strength; using strength 1", select)
        best = LinearFit(scaler, _estimator(task, 1.0).fit(z, y_fit), 1.0)
    best.scores = scores
    logger.info("linear: strength %g selected on validation %s (%s)", best.strength, select,
                {k: v for k, v in scores.items()})
    return best


@torch.no_grad()
def fold_into_head(model: nn.Module, fit: LinearFit, task: str) -> None:
    """Set a ``mean_bn`` head so that ``model`` outputs :func:`linear_outputs` on its pooled
    features.

    The BatchNorm becomes the identity up to its ``eps`` (running mean 0, running variance 1;
    the ``1 / sqrt(1 + eps)`` it applies is undone in the linear weights), and the linear layer
    holds ``W / scale`` and ``b - (W / scale) @ mean`` (the scaler folded in).

    Parameters
    ----------
    model : CSBrainForClassification | CSBrainForRegression
        With ``head="mean_bn"``; its ``head.fc`` has ``n_outputs`` rows.
    fit : LinearFit
    task : str
    """
    head = model.head
    n_outputs = head.fc.out_features
    coef = np.atleast_2d(np.asarray(fit.estimator.coef_, dtype=np.float64))    # (k, D)
    bias = np.atleast_1d(np.asarray(fit.estimator.intercept_, dtype=np.float64))  # (k,)
    w = np.zeros((n_outputs, coef.shape[1]))
    b = np.full(n_outputs, _ABSENT_LOGIT if task == "multiclass" else 0.0)
    rows = fit.estimator.classes_.astype(int) if task == "multiclass" else np.arange(len(coef))
    scale = fit.scaler.scale_
    w[rows] = coef / scale
    b[rows] = bias - w[rows] @ fit.scaler.mean_
    bn = head.norm
    bn.running_mean.zero_()
    bn.running_var.fill_(1.0)
    head.fc.weight.copy_(torch.from_numpy(w * np.sqrt(1.0 + bn.eps)))
    head.fc.bias.copy_(torch.from_numpy(b))
