"""Metrics follow scikit-learn's definitions (spec §5) and are JSON-ready."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from csbrain.engine.metrics import (
    binary_metrics,
    compute_metrics,
    metric_mode,
    multiclass_metrics,
    regression_metrics,
    save_metrics,
    scores_from_outputs,
)


def test_multiclass_against_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 50)
    proba = rng.dirichlet(np.ones(3), 50)
    proba[np.arange(50), y] += 0.3 * (rng.random(50) < 0.6)
    m = multiclass_metrics(y, proba)
    pred = proba.argmax(1)
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["cohen_kappa"] == pytest.approx(skm.cohen_kappa_score(y, pred))
    assert m["f1_weighted"] == pytest.approx(skm.f1_score(y, pred, average="weighted"))
    assert m["confusion_matrix"] == skm.confusion_matrix(y, pred).tolist()
    # a class absent from the predictions and labels still has its row and column
    m4 = multiclass_metrics(y, np.c_[proba, np.zeros(50)])
    assert np.array(m4["confusion_matrix"]).shape == (4, 4)


def test_binary_threshold_auroc_and_trapezoidal_auc_pr():
    y = np.array([0, 0, 1, 1, 0, 1, 1, 0, 1, 0])
    p = np.array([0.1, 0.6, 0.55, 0.9, 0.3, 0.45, 0.8, 0.2, 0.7, 0.5])
    m = binary_metrics(y, p)
    pred = (p >= 0.5).astype(int)
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["auroc"] == pytest.approx(skm.roc_auc_score(y, p))
    precision, recall, _ = skm.precision_recall_curve(y, p)
    assert m["auc_pr"] == pytest.approx(skm.auc(recall, precision))
    assert m["auc_pr"] != pytest.approx(skm.average_precision_score(y, p))  # not AP
    assert m["confusion_matrix"] == [[3, 2], [1, 4]]   # p = 0.5 counts as positive
    one_class = binary_metrics(np.zeros(4, int), np.array([0.1, 0.7, 0.2, 0.3]))
    assert one_class["auroc"] is None and one_class["auc_pr"] is None
    with pytest.raises(ValueError, match="binary labels must be 0 or 1"):
        binary_metrics(np.array([0, 2]), np.array([0.1, 0.9]))


def test_regression_metrics():
    y = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    yhat = np.array([1.1, 1.9, 3.3, 3.8, 5.2])
    m = regression_metrics(y, yhat)
    assert m["pearson_r"] == pytest.approx(np.corrcoef(y, yhat)[0, 1])
    assert m["r2"] == pytest.approx(skm.r2_score(y, yhat))
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean((y - yhat) ** 2)))
    assert regression_metrics(y, np.full(5, 3.0))["pearson_r"] is None


def test_scores_and_json(tmp_path):
    logits = np.array([[2.0, 0.0, -1.0], [0.0, 3.0, 0.0]])
    p = scores_from_outputs("multiclass", logits)
    assert np.allclose(p.sum(1), 1) and p.argmax(1).tolist() == [0, 1]
    assert scores_from_outputs("binary", np.array([[0.0], [100.0]])).tolist() == [0.5, 1.0]
    m = compute_metrics("binary", np.array([0, 1, 1, 0]), np.array([0.2, 0.8, 0.4, 0.1]))
    save_metrics(tmp_path / "m.json", m)
    assert json.loads((tmp_path / "m.json").read_text()) == m
    assert metric_mode("val_rmse") == "min" and metric_mode("balanced_accuracy") == "max"
    with pytest.raises(ValueError, match="no predictions to score"):
        compute_metrics("multiclass", np.zeros(0), np.zeros((0, 3)))
