"""Representation diagnostics: feature statistics, collapse flag, linear probe, hooks on both
compute paths, and the per-epoch pretraining metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from csbrain import CSBrain, CSBrainConfig
from csbrain.engine.diagnostics import (
    SPREAD_THRESHOLD,
    diagnose,
    extract_features,
    feature_stats,
    linear_probe,
)
from csbrain.models import CSBrainForClassification, fused_cpu
from tests.train.helpers import CHANNELS, arrays

CFG = CSBrainConfig.from_preset("tiny", n_layers=2)           # d_model 40 (the smallest)


def tiny_backbone(seed: int = 0) -> CSBrain:
    torch.manual_seed(seed)
    return CSBrain(CHANNELS, CFG).eval()


def test_feature_stats_of_identical_rows_and_of_isotropic_noise():
    same = np.tile(np.random.default_rng(0).normal(size=16), (50, 1))
    s = feature_stats(same)
    assert s["spread"] == pytest.approx(0.0, abs=1e-9)
    assert s["mean_cosine"] == pytest.approx(1.0, abs=1e-9)
    assert s["effective_rank"] == pytest.approx(1.0)
    iso = feature_stats(np.random.default_rng(1).normal(size=(4000, 16)), seed=3)
    assert iso["effective_rank"] > 15.0
    assert abs(iso["mean_cosine"]) < 0.02
    assert iso["spread"] == pytest.approx(1.0, abs=0.05)
    one_direction = np.outer(np.arange(1, 101), np.ones(8))         # rank 1, cosine 1
    s = feature_stats(one_direction)
    assert s["effective_rank"] == pytest.approx(1.0) and s["mean_cosine"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="expected"):
        feature_stats(np.zeros((1, 4)))


def test_linear_probe_separates_separable_classes_and_not_shuffled_labels():
    rng = np.random.default_rng(0)
    y = np.arange(200) % 2
    x = rng.normal(size=(200, 10))
    x[:, 0] += 4.0 * (2 * y - 1)
    probe = linear_probe(x, y, seed=0)
    assert probe["balanced_accuracy"] > 0.9 and probe["auroc"] > 0.95
    assert probe["n_splits"] == 5
    shuffled = linear_probe(x, rng.permutation(y), seed=0)
    assert abs(shuffled["balanced_accuracy"] - 0.5) < 0.15
    grouped = linear_probe(x, y, groups=np.arange(200) // 10, n_splits=3)
    assert grouped["balanced_accuracy"] > 0.9 and grouped["n_splits"] == 3
    with pytest.raises(ValueError, match="two classes"):
        linear_probe(x, np.zeros(200, int))


@pytest.mark.parametrize("fused", [True, False])
def test_extract_features_shapes_and_hooks_leave_outputs_unchanged(fused):
    model = CSBrainForClassification(CHANNELS, CFG, n_outputs=1).eval()
    bb = model.backbone
    bb.fused_cpu = fused
    x = torch.from_numpy(arrays(6)[0])
    ref = bb(x).detach()
    plans = []
    original = fused_cpu.plan

    def spy(*a):
        plans.append(original(*a))
        return plans[-1]

    fused_cpu.plan = spy
    try:
        feats = extract_features(model, x, batch_size=4)
        with_hooks = []
        handle = bb.layers[-1].register_forward_hook(lambda m, i, o: with_hooks.append(o))
        try:
            out = bb(x)
        finally:
            handle.remove()
    finally:
        fused_cpu.plan = original
    assert torch.equal(out, ref) and torch.equal(with_hooks[0], ref)
    assert all((p is not None) == fused for p in plans)             # the path is unchanged
    if fused:
        assert all(all(spec is not None for spec in layer) for layer in plans[0].layers)
    names = ["embedding", "layer1", "layer2"]
    assert sorted(feats) == sorted(f"{n}_{k}" for n in names for k in ("pooled", "channels"))
    for n in names:
        assert feats[f"{n}_pooled"].shape == (6, 40)
        assert feats[f"{n}_channels"].shape == (6, 4 * 40)
    last = ref.mean(dim=(1, 2)).numpy()
    np.testing.assert_allclose(feats["layer2_pooled"], last, rtol=1e-4, atol=1e-5)
    assert not bb._forward_hooks and not bb.layers[0]._forward_hooks      # hooks removed


def test_collapsed_encoder_is_flagged_informative_is_not():
    x, y = arrays(40)
    groups = np.repeat(np.arange(10), 4)
    healthy = diagnose(tiny_backbone(), x, y, groups=groups, n_random=1, n_splits=3)
    collapsed_model = tiny_backbone()
    collapsed_model.patch_embedding.register_forward_hook(
        lambda m, i, o: torch.full_like(o, 0.3))                     # every token the same
    collapsed = diagnose(collapsed_model, x, n_random=1)
    for name, e in healthy["features"].items():
        assert not e["collapsed"], (name, e["model"])
        assert e["model"]["spread"] > SPREAD_THRESHOLD
        assert set(e["probe"]) == {"model", "random"} and len(e["probe"]["random"]) == 1
    for name, e in collapsed["features"].items():
        assert e["collapsed"], (name, e["model"])
        assert "probe" not in e
    # the class is a 10 Hz wave on one channel: informative features probe well
    assert healthy["features"]["layer2_channels"]["probe"]["model"]["balanced_accuracy"] > 0.8
    json.dumps(healthy)
    again = diagnose(tiny_backbone(), x, y, groups=groups, n_random=1, n_splits=3)
    assert again == healthy                                          # seeded: reproducible


def test_diagnose_subset_and_task_model():
    x, y = arrays(30)
    model = CSBrainForClassification(CHANNELS, CFG.replace(n_layers=1), n_outputs=1)
    model.train()
    out = diagnose(model, x, y, n_random=0, max_windows=20, n_splits=2)
    assert out["n_windows"] == 20 and out["n_probe_windows"] == 20
    assert not any(e["collapsed"] for e in out["features"].values())   # absolute threshold
    constant = diagnose(model, np.zeros_like(x), n_random=0)
    assert all(e["collapsed"] for e in constant["features"].values())
    assert sorted(out["features"]) == ["embedding_channels", "embedding_pooled",
                                       "layer1_channels", "layer1_pooled"]
    assert model.training                                            # mode restored


def test_pretraining_logs_feature_diagnostics_per_epoch(tmp_path):
    from csbrain.report.plots import plot_feature_diagnostics
    from csbrain.train import pretrain
    from tests.train.helpers import pretrain_cfg, run_data

    pretrain(pretrain_cfg("epochs=2", "val_fraction=0.25"), run_data(16), tmp_path / "pre")
    records = [json.loads(ln) for ln in (tmp_path / "pre" / "metrics.jsonl").read_text()
               .splitlines()]
    val = [r for r in records if "val_loss" in r]
    assert len(val) == 2
    for r in val:
        assert 0.0 < r["val_feature_spread"] < 10.0
        assert r["val_effective_rank"] >= 1.0
        assert -1.0 <= r["val_mean_cosine"] <= 1.0
    png = plot_feature_diagnostics(records, tmp_path / "diag.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="val_feature_spread"):
        plot_feature_diagnostics([{"epoch": 1, "val_loss": 0.1}], tmp_path / "x.png")
