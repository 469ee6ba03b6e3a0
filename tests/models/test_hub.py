"""Our format: config.json + model.safetensors round trips, strictness, head dropping."""

from __future__ import annotations

import json

import pytest
import torch

from csbrain import CSBrain, CSBrainConfig, CSBrainForClassification, CSBrainForPretraining
from csbrain.models import load_model

TINY = CSBrainConfig.from_preset("tiny")


@pytest.mark.parametrize("cls, kwargs", [
    (CSBrain, {}), (CSBrainForPretraining, {}),
    (CSBrainForClassification, {"n_outputs": 3, "n_times": 600, "head": "flatten"}),
    (CSBrainForClassification, {"n_outputs": 2, "head": "attention"}),
])
def test_round_trip_is_exact(tmp_path, cls, kwargs):
    torch.manual_seed(0)
    model = cls("ISRUC", TINY, **kwargs).eval()
    model.save_pretrained(tmp_path / "m", extra={"note": "x"})
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    assert meta["config"]["temporal_mode"] == "paper" and meta["montage"]["preset"] == "ISRUC"
    assert meta["extra"] == {"note": "x"}
    loaded = cls.from_pretrained(tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert type(again) is cls
    x = torch.randn(2, 6, 3, 200)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
        torch.testing.assert_close(again(x), model(x), rtol=0, atol=0)


def test_task_folder_loads_into_backbone_dropping_only_the_head(tmp_path):
    torch.manual_seed(0)
    clf = CSBrainForClassification("HMC", TINY, n_outputs=5).eval()
    clf.save_pretrained(tmp_path / "clf")
    backbone = CSBrain.from_pretrained(tmp_path / "clf")
    x = torch.randn(1, 4, 2, 200)
    with torch.no_grad():
        torch.testing.assert_close(backbone(x), clf.backbone(x), rtol=0, atol=0)
    # a pretraining folder initialises a classifier's backbone (fine-tuning)
    pre = CSBrainForPretraining("HMC", TINY)
    pre.save_pretrained(tmp_path / "pre")
    new = CSBrainForClassification.from_pretrained(tmp_path / "pre", n_outputs=2)
    assert torch.equal(new.backbone.layers[0].fc1.weight, pre.backbone.layers[0].fc1.weight)


def test_mismatching_weights_are_named(tmp_path):
    CSBrain("HMC", TINY).save_pretrained(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    meta["config"]["dim_feedforward"] = 96
    (tmp_path / "m" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"shape mismatches \['layers.0.fc1.bias: file \(80,\), model \(96,\)"):
        CSBrain.from_pretrained(tmp_path / "m")


def test_not_a_model_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a csbrain model folder"):
        CSBrain.from_pretrained(tmp_path)


def test_mean_bn_head_standardises_pooled_features_and_round_trips(tmp_path):
    """The MAE-style head: in training, pooled features are standardised over the batch (so a
    common offset and scale of all windows' features is invisible to the linear layer); the
    running statistics are saved and used in eval; a one-window batch uses them too."""
    from csbrain.models.heads import BatchNormMeanPoolHead

    torch.manual_seed(0)
    head = BatchNormMeanPoolHead(4, 3, 40, 2, dropout=0.0).train()
    h = torch.randn(8, 4, 3, 40)
    torch.testing.assert_close(head(h), head(5.0 * h + 3.0), rtol=1e-4, atol=1e-4)
    assert head.norm.num_batches_tracked == 2 and head.norm.running_mean.abs().sum() > 0
    assert head(h[:1]).shape == (1, 2)                         # batch of one: running stats
    assert head.norm.num_batches_tracked == 2

    model = CSBrainForClassification("ISRUC", TINY, n_outputs=2, head="mean_bn").train()
    x = torch.randn(4, 6, 3, 200)
    model(x)
    model.eval()
    model.save_pretrained(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.head_name == "mean_bn"
    torch.testing.assert_close(loaded.head.norm.running_var, model.head.norm.running_var)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
