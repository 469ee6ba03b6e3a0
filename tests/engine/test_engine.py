"""What training and evaluation share: labelled windows, the selectable metrics, batched
inference on arrays, and an import without torch for configs and splits."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from csbrain.engine.inference import predict_outputs, predict_windows
from csbrain.engine.metrics import (
    EXTRA_METRICS,
    LOSS,
    TASK_METRICS,
    check_select_metric,
    compute_metrics,
    selectable_metrics,
)
from csbrain.engine.rundata import labelled_indices


def test_labelled_windows_int_and_float():
    assert labelled_indices(np.array([0, -1, 2, 1, -1])).tolist() == [0, 2, 3]
    assert labelled_indices(np.array([0.5, np.nan, -1.0])).tolist() == [0, 2]  # -1.0 a target


@pytest.mark.parametrize("task,scores", [
    ("multiclass", np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]])),
    ("binary", np.array([0.2, 0.9, 0.6, 0.4])),
    ("regression", np.array([0.1, 1.2, 1.9, 0.2])),
])
def test_selectable_metrics_are_the_numbers_each_task_reports(task, scores):
    y = np.array([0, 1, 2, 0]) if task == "multiclass" else np.array([0, 1, 1, 0])
    reported = set(compute_metrics(task, y, scores)) - {"n", "confusion_matrix"}
    assert reported == set(TASK_METRICS[task]) | set(EXTRA_METRICS[task])
    assert set(selectable_metrics(task)) == reported | {LOSS}
    assert set(selectable_metrics(None)) >= set(selectable_metrics(task))


def test_check_select_metric_names_the_choices_and_the_closest():
    assert check_select_metric("val_rmse", ("rmse", LOSS)) == "rmse"
    assert check_select_metric("last", ("rmse",)) == "last"
    with pytest.raises(ValueError, match=r"select_metric='val_auto' is not a validation metric"):
        check_select_metric("val_auto", ("rmse",))
    with pytest.raises(ValueError, match=r"of task 'x'; expected one of \['auto', 'last', "
                                         r"'rmse'\].*Did you mean 'rmse'\?"):
        check_select_metric("rsme", ("rmse",), what="task 'x'")


def test_predict_windows_equals_predict_outputs_on_a_dataset():
    from torch.utils.data import TensorDataset

    from csbrain.config import CSBrainConfig
    from csbrain.models import CSBrainForClassification

    torch.manual_seed(0)
    model = CSBrainForClassification(["C3", "C4", "O1"], CSBrainConfig.from_preset(
        "tiny", n_layers=1), n_outputs=2, n_times=400, head="mean")
    x = np.random.default_rng(0).normal(size=(5, 3, 2, 200)).astype(np.float32)
    model.train()
    out = predict_windows(model, x, batch_size=2)
    ref, _ = predict_outputs(model, TensorDataset(torch.from_numpy(x), torch.zeros(5)),
                             batch_size=2)
    assert out.shape == (5, 2) and np.array_equal(out, ref)
    assert model.training                                     # mode restored


def test_configs_and_splits_import_without_torch():
    code = ("import sys; import csbrain.train.config, csbrain.engine.splits, csbrain.engine; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
