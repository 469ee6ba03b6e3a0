"""Released checkpoints: key map coverage, strict loading, prefixes, wrong architectures."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from csbrain import CSBrain, CSBrainConfig, CSBrainForClassification, CSBrainForPretraining
from csbrain.models.released import config_from_released, read_checkpoint


@pytest.fixture(scope="module")
def released_12layer_zeros(golden):
    shapes = json.loads((golden / "official_12layer_state_dict_shapes.json").read_text())
    return {k: torch.randn(v) for k, v in shapes.items()}


def test_12_layer_released_model_has_8902000_parameters():
    model = CSBrainForPretraining("TUEG", CSBrainConfig())
    assert sum(p.numel() for p in model.parameters()) == 8_902_000
    assert sum(p.numel() for p in model.backbone.parameters()) == 8_861_800


def test_key_map_covers_every_released_key_and_shape(released_12layer_zeros, tmp_path):
    path = tmp_path / "CSBrain.pth"
    torch.save({f"module.{k}": v for k, v in released_12layer_zeros.items()}, path)
    model = CSBrainForPretraining.from_released(path, preset="TUEG")
    assert model.config.n_layers == 12
    own = {k: v for k, v in model.state_dict().items()}
    # every released tensor lands somewhere, bit for bit
    sd = released_12layer_zeros
    assert torch.equal(own["head.weight"], sd["proj_out.0.weight"])
    assert torch.equal(own["backbone.layers.11.window_attn.qkv.weight"],
                       sd["encoder.layers.11.inter_window_attn.in_proj_weight"])
    assert torch.equal(own["backbone.region_conv.weights.2"][3],
                       sd["BrainEmbedEEGLayer.region_blocks.region_3.2.weight"][..., 0])
    assert torch.equal(own["backbone.temporal_conv.convs.1.weight"],
                       sd["TemEmbedEEGLayer.convs.1.weight"][..., 0])
    n_released = sum(v.numel() for v in sd.values())
    assert n_released == sum(v.numel() for v in own.values()) == 8_902_000


def test_prefixes_module_and_backbone_are_stripped(golden, tmp_path):
    sd = torch.load(golden / "csbrain_official_2layer.pth", map_location="cpu", weights_only=True)
    plain = {k.removeprefix("module."): v for k, v in sd.items()}
    for prefix in ("", "module.", "backbone.", "module.backbone."):
        path = tmp_path / f"{prefix or 'plain'}.pth"
        torch.save({prefix + k: v for k, v in plain.items()}, path)
        model = CSBrain.from_released(path, preset="HMC")
        torch.testing.assert_close(model.state_dict()["layers.1.fc1.weight"],
                                   plain["encoder.layers.1.linear1.weight"])


def test_missing_and_unexpected_keys_are_named(golden, tmp_path):
    sd = torch.load(golden / "csbrain_official_2layer.pth", map_location="cpu", weights_only=True)
    sd = dict(sd)
    del sd["module.encoder.layers.1.norm2.bias"]
    sd["module.encoder.layers.1.extra.weight"] = torch.zeros(3)
    path = tmp_path / "bad.pth"
    torch.save(sd, path)
    with pytest.raises(ValueError, match=r"missing keys: encoder\.layers\.1\.norm2\.bias.*"
                                         r"unexpected keys: encoder\.layers\.1\.extra\.weight"):
        CSBrain.from_released(path, preset="TUEG")


def test_wrong_architecture_is_reported(golden, tmp_path):
    ckpt = golden / "csbrain_official_2layer.pth"
    with pytest.raises(ValueError, match=r"n_layers=12.*the checkpoint has 2 layers, the model "
                                         r"12; missing keys: encoder\.layers\.10\."):
        CSBrain.from_released(ckpt, preset="TUEG", n_layers=12)
    sd = torch.load(ckpt, map_location="cpu", weights_only=True)
    sd["module.encoder.layers.0.linear1.weight"] = torch.zeros(1024, 200)
    path = tmp_path / "ff.pth"
    torch.save(sd, path)
    with pytest.raises(ValueError, match=r"shape mismatch for "
                                         r"'encoder\.layers\.1\.linear1\.weight': "
                                         r"checkpoint \(800, 200\), model \(1024, 200\)"):
        # the inferred config follows layer 0 (1024), so layer 1 (800) mismatches
        CSBrain.from_released(path, preset="TUEG")


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "x.pth"
    torch.save({"foo": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="not a released CSBrain checkpoint"):
        CSBrain.from_released(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        CSBrain.from_released(tmp_path / "nope.pth")


def test_weights_only_refuses_pickled_objects(tmp_path):
    path = tmp_path / "obj.pth"
    with open(path, "wb") as f:
        pickle.dump({"a": object()}, f)
    with pytest.raises(ValueError, match="weights_only=False"):
        read_checkpoint(path)


def test_config_inferred_from_checkpoint(golden):
    state = read_checkpoint(golden / "csbrain_official_2layer.pth")
    cfg = config_from_released(state)
    got = (cfg.n_layers, cfg.d_model, cfg.dim_feedforward, cfg.kernel_sizes, cfg.temporal_mode)
    assert got == (2, 200, 800, (1, 3, 5), "released")


def test_pretraining_needs_a_reconstruction_head(golden, tmp_path):
    sd = torch.load(golden / "csbrain_official_2layer.pth", map_location="cpu", weights_only=True)
    sd = {k: v for k, v in sd.items() if "proj_out" not in k}
    path = tmp_path / "nohead.pth"
    torch.save(sd, path)
    CSBrain.from_released(path, preset="TUEG")  # backbone alone is fine
    with pytest.raises(ValueError, match="no reconstruction head"):
        CSBrainForPretraining.from_released(path, preset="TUEG")


def test_released_downstream_classifier_loads_into_flatten_head(golden, tmp_path):
    sd = torch.load(golden / "csbrain_official_2layer.pth", map_location="cpu", weights_only=True)
    sd = {k.replace("module.", "module.backbone."): v for k, v in sd.items() if "proj_out" not in k}
    C, P, D = 4, 30, 200
    head = {"classifier.1.weight": torch.randn(P * D, C * P * D) * 1e-3,
            "classifier.1.bias": torch.zeros(P * D),
            "classifier.4.weight": torch.randn(D, P * D) * 1e-3,
            "classifier.4.bias": torch.zeros(D),
            "classifier.7.weight": torch.randn(5, D), "classifier.7.bias": torch.zeros(5)}
    sd.update({f"module.{k}": v for k, v in head.items()})
    path = tmp_path / "hmc_downstream.pth"
    torch.save(sd, path)
    model = CSBrainForClassification.from_released(path, preset="HMC", n_outputs=5, n_times=P * 200,
                                                   head="flatten")
    assert torch.equal(model.head[7].weight, head["classifier.7.weight"])
    assert model(torch.randn(2, C, P, 200)).shape == (2, 5)
