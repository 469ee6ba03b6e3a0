"""Metrics per task kind, with scikit-learn's definitions (spec §5).

========== ==========================================================================
multiclass balanced accuracy, Cohen's kappa, weighted F1 (+ accuracy, confusion matrix)
binary     balanced accuracy at threshold 0.5, AUROC, AUC-PR = ``auc(recall, precision)``
           (trapezoidal area under the precision-recall curve), + accuracy, confusion matrix
regression Pearson r, R², RMSE (+ MAE)
========== ==========================================================================

Undefined values (AUROC with one class present, Pearson r of a constant) are ``None`` and
logged, so the JSON stays valid.

A run selects its saved model on one validation metric (``select_metric``):
:func:`check_select_metric` checks the name against the metrics the task produces, before any
training.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from csbrain._checks import CSBrainError, check_option, closest

logger = logging.getLogger(__name__)

__all__ = ["TASK_METRICS", "EXTRA_METRICS", "BINARY_THRESHOLD", "SELECT_DEFAULT",
           "SELECT_KEYWORDS", "VAL_PREFIX", "LOSS", "compute_metrics", "multiclass_metrics",
           "binary_metrics",
           "regression_metrics", "scores_from_outputs", "save_metrics", "metric_mode",
           "selectable_metrics", "check_select_metric"]

#: Headline metrics of each task kind (spec §5); every result also holds the extras.
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "multiclass": ("balanced_accuracy", "cohen_kappa", "f1_weighted"),
    "binary": ("balanced_accuracy", "auroc", "auc_pr"),
    "regression": ("pearson_r", "r2", "rmse"),
}
#: The other numbers each task's result holds (besides ``n`` and the confusion matrix).
EXTRA_METRICS: dict[str, tuple[str, ...]] = {
    "multiclass": ("accuracy",), "binary": ("accuracy",), "regression": ("mae",),
}
#: The metric that selects the fine-tuned checkpoint (spec §5).
SELECT_DEFAULT: dict[str, str] = {"multiclass": "balanced_accuracy",
                                  "binary": "balanced_accuracy", "regression": "r2"}
#: Probability at and above which a binary prediction is class 1 (spec §5).
BINARY_THRESHOLD = 0.5
#: ``select_metric`` values that name no metric: ``auto`` (the task's default), ``last``.
SELECT_KEYWORDS = ("auto", "last")
#: Prefix of validation metrics in ``metrics.jsonl`` (``val_balanced_accuracy``).
VAL_PREFIX = "val_"
#: The objective's loss, reported by every validation next to the task's metrics.
LOSS = "loss"
_LOWER_IS_BETTER = {"rmse", "mae", LOSS}


def _strip_val(name: str) -> str:
    return name[len(VAL_PREFIX):] if name.startswith(VAL_PREFIX) else name


def metric_mode(name: str) -> str:
    """``"min"`` for errors and losses (``rmse``, ``mae``, ``loss``), else ``"max"``."""
    return "min" if _strip_val(name) in _LOWER_IS_BETTER else "max"


def selectable_metrics(task: str | None) -> tuple[str, ...]:
    """Validation metrics a supervised run of ``task`` can select its model on.

    Parameters
    ----------
    task : {"multiclass", "binary", "regression"} | None
        None: any task (the names of every task).

    Returns
    -------
    tuple of str
        The task's headline and extra metrics, then :data:`LOSS`.
    """
    tasks = list(TASK_METRICS) if task is None else [check_option("task", task,
                                                                  list(TASK_METRICS))]
    names = [n for t in tasks for n in (*TASK_METRICS[t], *EXTRA_METRICS[t])]
    return (*dict.fromkeys(names), LOSS)


def check_select_metric(value: str, metrics: Sequence[str], *, name: str = "select_metric",
                        what: str = "") -> str:
    """Return the selection ``value`` names: a keyword or a metric, without ``val_``.

    Parameters
    ----------
    value : str
        ``auto``, ``last``, or one of ``metrics`` with or without the ``val_`` prefix
        (``val_loss`` and ``loss`` are the same).
    metrics : sequence of str
        The validation metrics the run produces (e.g. :func:`selectable_metrics`).
    name, what : str
        For the message: the parameter and what the metrics are of (``"task 'binary'"``).

    Raises
    ------
    CSBrainError
        ``value`` names no metric of ``metrics``; the message lists them and the closest.
    """
    if value in SELECT_KEYWORDS:
        return value
    base = _strip_val(str(value))
    if base in metrics:
        return base
    choices = [*SELECT_KEYWORDS, *metrics]
    near = closest(base, choices, n=3)
    hint = f" Did you mean {', '.join(repr(n) for n in near)}?" if near else ""
    of = f" of {what}" if what else ""
    raise CSBrainError(f"{name}={value!r} is not a validation metric{of}; expected one of "
                       f"{choices} (the {VAL_PREFIX!r} prefix is optional).{hint}")


def _float(v: Any) -> float | None:
    v = float(v)
    return None if math.isnan(v) or math.isinf(v) else v


def _check_scores(y_true: np.ndarray, scores: np.ndarray) -> None:
    if len(y_true) != len(scores):
        raise ValueError(f"y_true has {len(y_true)} entries but the scores have {len(scores)}")
    if len(y_true) == 0:
        raise ValueError("no predictions to score (empty split); expected at least one window")


def multiclass_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, Any]:
    """Metrics of a multi-class classifier.

    Parameters
    ----------
    y_true : ndarray, shape (n,), int
        Class ids ``0..K-1``.
    proba : ndarray, shape (n, K)
        Class probabilities (or any scores; the argmax is the prediction).

    Returns
    -------
    dict
        ``balanced_accuracy``, ``cohen_kappa``, ``f1_weighted``, ``accuracy``,
        ``confusion_matrix`` (K x K list, rows = true class), ``n``.
    """
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        cohen_kappa_score,
        confusion_matrix,
        f1_score,
    )

    y_true = np.asarray(y_true).astype(np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    _check_scores(y_true, proba)
    k = proba.shape[1]
    y_pred = proba.argmax(axis=1)
    labels = np.arange(k)
    kappa = cohen_kappa_score(y_true, y_pred, labels=labels)
    return {"balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
            "cohen_kappa": _float(kappa),
            "f1_weighted": float(f1_score(y_true, y_pred, average="weighted", labels=labels,
                                          zero_division=0)),
            "accuracy": float(accuracy_score(y_true, y_pred)),
            "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
            "n": int(len(y_true))}


def binary_metrics(y_true: np.ndarray, prob: np.ndarray,
                   threshold: float = BINARY_THRESHOLD) -> dict[str, Any]:
    """Metrics of a binary classifier from the positive-class probability.

    Parameters
    ----------
    y_true : ndarray, shape (n,), 0/1
    prob : ndarray, shape (n,)
        Probability of class 1.
    threshold : float
        Decision threshold (spec: :data:`BINARY_THRESHOLD`, 0.5; ``prob >= threshold`` is 1).

    Returns
    -------
    dict
        ``balanced_accuracy``, ``auroc``, ``auc_pr``, ``accuracy``, ``confusion_matrix``
        (2 x 2), ``n``. ``auroc``/``auc_pr`` are None when one class is absent.
    """
    from sklearn.metrics import (
        accuracy_score,
        auc,
        balanced_accuracy_score,
        confusion_matrix,
        precision_recall_curve,
        roc_auc_score,
    )

    y_true = np.asarray(y_true).astype(np.int64)
    prob = np.asarray(prob, dtype=np.float64).reshape(-1)
    _check_scores(y_true, prob)
    bad = sorted(set(np.unique(y_true).tolist()) - {0, 1})
    if bad:
        raise ValueError(f"binary labels must be 0 or 1; got {bad}")
    y_pred = (prob >= threshold).astype(np.int64)
    out: dict[str, Any] = {"balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
                           "auroc": None, "auc_pr": None}
    if len(np.unique(y_true)) == 2:
        out["auroc"] = float(roc_auc_score(y_true, prob))
        precision, recall, _ = precision_recall_curve(y_true, prob)
        out["auc_pr"] = float(auc(recall, precision))
    else:
        logger.warning("only class %d is present: AUROC and AUC-PR are undefined", y_true[0])
    out.update(accuracy=float(accuracy_score(y_true, y_pred)),
               confusion_matrix=confusion_matrix(y_true, y_pred, labels=[0, 1]).tolist(),
               n=int(len(y_true)))
    return out


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """Pearson r, R², RMSE and MAE (targets flattened).

    Parameters
    ----------
    y_true, y_pred : ndarray, shape (n,) or (n, T)
    """
    from scipy.stats import pearsonr
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    y_true = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(len(y_pred), -1)
    _check_scores(y_true, y_pred)
    r = None
    if len(y_true) > 1 and y_true.std() > 0 and y_pred.std() > 0:
        r = _float(pearsonr(y_true.ravel(), y_pred.ravel()).statistic)
    else:
        logger.warning("Pearson r is undefined (constant targets or predictions)")
    return {"pearson_r": r, "r2": _float(r2_score(y_true, y_pred)) if len(y_true) > 1 else None,
            "rmse": float(np.sqrt(mean_squared_error(y_true, y_pred))),
            "mae": float(mean_absolute_error(y_true, y_pred)), "n": int(len(y_true))}


def scores_from_outputs(task: str, outputs: np.ndarray) -> np.ndarray:
    """Model outputs to scores: softmax ``(n, K)``, sigmoid ``(n,)`` or the values.

    Parameters
    ----------
    task : {"multiclass", "binary", "regression"}
    outputs : ndarray, shape (n, n_outputs)
        Logits (classification) or predictions (regression).
    """
    check_option("task", task, list(TASK_METRICS))
    outputs = np.asarray(outputs, dtype=np.float64)
    if task == "multiclass":
        z = outputs - outputs.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
    if task == "binary":
        return 1.0 / (1.0 + np.exp(-outputs[:, 0]))
    return outputs[:, 0] if outputs.shape[1] == 1 else outputs


def compute_metrics(task: str, y_true: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    """Metrics of ``task`` from labels and scores (see :func:`scores_from_outputs`)."""
    check_option("task", task, list(TASK_METRICS))
    if task == "multiclass":
        return multiclass_metrics(y_true, scores)
    if task == "binary":
        return binary_metrics(y_true, scores)
    return regression_metrics(y_true, scores)


def save_metrics(path: str | Path, metrics: dict[str, Any]) -> Path:
    """Write metrics as indented JSON, atomically."""
    from csbrain._io import atomic_write_json

    atomic_write_json(path, metrics)
    return Path(path)
