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
    # built on meta and given the file's tensors: nothing left on meta, and it trains
    assert not [n for n, t in [*loaded.named_parameters(), *loaded.named_buffers()] if t.is_meta]
    before = [p.detach().clone() for p in loaded.parameters()]
    opt = torch.optim.SGD(loaded.parameters(), lr=0.1)
    loaded.train()
    out = loaded(x)
    (out[0] if isinstance(out, tuple) else out).float().pow(2).mean().backward()
    opt.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, loaded.parameters()))


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
    with pytest.raises(ValueError, match=r"shape mismatches \['layers.0.fc1.bias: "
                                         r"file \(80,\), model \(96,\)"):
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


def test_load_model_is_the_one_rule_for_folders_and_released_files(golden, tmp_path, monkeypatch):
    """``load_model``: a folder loads by its config.json, any other file as a released checkpoint
    (read once; with a reconstruction head as CSBrainForPretraining, else CSBrain)."""
    from csbrain.models import released

    reads, real_load = [], torch.load

    def counting_load(*args, **kwargs):
        reads.append(args)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(released.torch, "load", counting_load)
    pth = golden / "csbrain_official_2layer.pth"
    model = load_model(pth, montage="HMC")
    assert type(model) is CSBrainForPretraining and model.montage.preset == "HMC"
    assert len(reads) == 1                                      # the checkpoint is read once
    sd = {k: v for k, v in real_load(pth, weights_only=True).items() if "proj_out" not in k}
    torch.save(sd, tmp_path / "backbone.ckpt")                  # any file name: not a folder
    backbone = load_model(tmp_path / "backbone.ckpt", montage=["C3", "C4", "Cz"])
    assert type(backbone) is CSBrain and backbone.n_chans == 3
    torch.testing.assert_close(backbone.state_dict()["layers.1.fc1.weight"],
                               model.backbone.state_dict()["layers.1.fc1.weight"])
    model.save_pretrained(tmp_path / "folder")
    again = load_model(tmp_path / "folder", montage="ISRUC")
    assert type(again) is CSBrainForPretraining and again.montage.preset == "ISRUC"
    assert load_model(tmp_path / "folder").montage.preset == "HMC"   # the saved montage
    assert load_model(pth, montage=["C3", "C4"]).montage.n_chans == 2
    x = torch.randn(1, 6, 2, 200)
    with torch.no_grad():
        torch.testing.assert_close(again(x), load_model(pth, montage="ISRUC")(x), rtol=0, atol=0)
    with pytest.raises(FileNotFoundError, match="does not exist; expected a csbrain model folder"):
        load_model(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="not a csbrain model folder"):
        load_model(tmp_path)
