"""Backbone behaviour: input validation, temporal modes, montages, braindecode parameters."""

from __future__ import annotations

import pytest
import torch

from csbrain import CSBrain, CSBrainConfig, CSBrainForClassification, Montage
from csbrain.models.layout import neighbour_index, region_attention_mask

TINY = CSBrainConfig.from_preset("tiny")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return CSBrain("HMC", TINY).eval()


@pytest.mark.parametrize("shape, message", [
    ((30, 200), r"rank 2\); expected \(batch, channels, patches, 200\) "
                r"or \(batch, channels, samples\)"),
    ((2, 4, 3, 100), r"patches of 100 samples; expected 200"),
    ((2, 4, 250), r"250 samples per channel, not a multiple of the patch size 200"),
    ((2, 5, 3, 200), r"x has 5 channels but the montage has 4: \['F4', 'C4', 'O2', 'C3'\]"),
    ((1, 2, 4, 3, 200), r"rank 5"),
])
def test_bad_shapes_are_named(model, shape, message):
    x = torch.zeros(shape)
    with pytest.raises(ValueError, match=message):
        model(x)


def test_nan_and_inf_inputs_are_refused(model):
    x = torch.zeros(1, 4, 2, 200)
    x[0, 1, 0, 5] = float("nan")
    with pytest.raises(ValueError, match="NaN or Inf"):
        model(x)
    x[0, 1, 0, 5] = float("inf")
    with pytest.raises(ValueError, match="NaN or Inf"):
        model(x)


def test_mask_shape_checked(model):
    with pytest.raises(ValueError, match=r"mask has shape \(1, 4, 3\); expected \(1, 4, 2\)"):
        model(torch.zeros(1, 4, 2, 200), torch.zeros(1, 4, 3, dtype=torch.bool))


def test_input_dtype_empty_batch_and_mask_dtype(model):
    x = torch.randn(2, 4, 2, 200)
    torch.testing.assert_close(model(x.double()), model(x))  # float64 (MNE) is cast
    assert model(x.half()).dtype == torch.float32
    with pytest.raises(TypeError, match=r"x has dtype torch.int64; expected a floating-point"):
        model(x.long())
    with pytest.raises(ValueError, match=r"x has an empty batch \(shape \(0, 4, 2, 200\)\)"):
        model(x[:0])
    with pytest.raises(TypeError, match=r"mask must be a boolean tensor \(True = masked\) or "
                                        r"integer 0/1, got torch.float32"):
        model(x, torch.rand(2, 4, 2))
    with pytest.raises(TypeError, match="mask must be a boolean tensor"):
        model(x, torch.full((2, 4, 2), 2))
    mask = torch.rand(2, 4, 2) < 0.5
    torch.testing.assert_close(model(x, mask.long()), model(x, mask))
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got ndarray"):
        model(x.numpy())


def test_unknown_presets_and_sfreq(monkeypatch):
    with pytest.raises(ValueError, match=r"preset='TUEGG'.*TUEG"):
        CSBrain("TUEGG", TINY)
    with pytest.raises(ValueError, match=r"sfreq=250 is not supported; CSBrain reads 200 Hz"):
        CSBrain("HMC", TINY, sfreq=250)
    with pytest.raises(ValueError, match="n_chans=5 does not match the montage's 4 channels"):
        CSBrain("HMC", TINY, n_chans=5)
    with pytest.raises(ValueError,
                       match=r"preset='tinyy' is not allowed; expected one of .*'tiny'"):
        CSBrainConfig.from_preset("tinyy")
    with pytest.raises(ValueError, match="temporal_mode='fast' is not allowed"):
        CSBrainConfig(temporal_mode="fast")
    with pytest.raises(ValueError, match="n_heads=7 must divide d_model=200"):
        CSBrainConfig(n_heads=7)


def test_temporal_modes_differ_and_paper_mode_is_local():
    torch.manual_seed(0)
    released = CSBrain("HMC", TINY.replace(temporal_mode="released", n_layers=1)).eval()
    paper = CSBrain("HMC", TINY.replace(temporal_mode="paper", n_layers=1)).eval()
    paper.load_state_dict(released.state_dict())
    h = torch.randn(1, 4, 12, TINY.d_model)
    # paper mode: output at patch p depends only on patches p-2..p+2 (kernels up to 5)
    h2 = h.clone()
    h2[:, :, 11] += 1.0
    d_paper = (paper.temporal_conv(h2) - paper.temporal_conv(h)).abs().amax(dim=(0, 1, 3))
    assert torch.all(d_paper[:9] == 0) and torch.all(d_paper[9:] > 0)
    # released mode mixes all patches of the channel
    d_rel = (released.temporal_conv(h2) - released.temporal_conv(h)).abs().amax(dim=(0, 1, 3))
    assert torch.all(d_rel[:9] > 0)


def test_any_montage_and_set_montage():
    torch.manual_seed(0)
    names = ["Fp1", "Fp2", "F3", "F4", "C3", "C4", "Cz", "P3", "P4", "O1", "O2", "T7", "T8"]
    model = CSBrain(names, TINY).eval()
    assert model(torch.randn(2, 13, 3, 200)).shape == (2, 13, 3, TINY.d_model)
    model.set_montage(Montage.from_preset("ISRUC"))
    assert model(torch.randn(1, 6, 2, 200)).shape == (1, 6, 2, TINY.d_model)


def test_montage_switches_reuse_each_layout():
    """A corpus of several montages switches every batch: each layout is built once, and the
    output on a montage does not depend on the switches before it."""
    model = CSBrain(["C3", "C4", "O1"], TINY).eval()
    x3, x2 = torch.randn(2, 3, 2, 200), torch.randn(2, 2, 2, 200)
    with torch.no_grad():
        first = model(x3)
        layout = model.layout
        model.set_montage(["Fp1", "T7"])
        assert model(x2).shape == (2, 2, 2, TINY.d_model)
        model.set_montage(["C3", "C4", "O1"])
        assert model.layout is layout
        torch.testing.assert_close(model(x3), first, rtol=0, atol=0)
    model.to(torch.float64)                         # a move keeps the cached layouts usable
    model.set_montage(["Fp1", "T7"])
    with torch.no_grad():
        assert model(x2.double()).dtype == torch.float64


def test_braindecode_signal_parameters():
    chs_info = [{"ch_name": n} for n in ["C3", "C4", "Cz", "Fz", "Pz", "Oz"]]
    model = CSBrainForClassification(config=TINY, chs_info=chs_info, n_outputs=3, n_times=800,
                                     head="flatten")
    assert model.backbone.montage.canonical == ("C3", "C4", "Cz", "Fz", "Pz", "Oz")
    assert model(torch.randn(2, 6, 800)).shape == (2, 3)
    with pytest.raises(ValueError, match="no montage"):
        CSBrainForClassification(config=TINY, n_outputs=2)


def test_layout_matches_released_groups():
    # 3 regions of sizes 3, 1, 2: groups {0,3,4}, {1,3,5}, {2,3,4}
    regions = [0, 0, 0, 1, 2, 2]
    mask = region_attention_mask(regions)
    expected_pairs = {(0, 3), (0, 4), (1, 3), (1, 5), (2, 3), (2, 4), (3, 4), (3, 5)}
    for i in range(6):
        for j in range(6):
            allowed = i == j or (min(i, j), max(i, j)) in expected_pairs
            assert mask[i, j] == allowed, (i, j)
    nb = neighbour_index(regions, 3)
    assert nb.tolist() == [[2, 0, 1], [0, 1, 2], [1, 2, 0], [6, 3, 6], [5, 4, 5], [4, 5, 4]]


def test_gradients_reach_every_trainable_parameter():
    torch.manual_seed(0)
    model = CSBrain("SEED-VIG", TINY)  # 8 patches: window padding; all 5 regions? (no frontal)
    model(torch.randn(2, 17, 8, 200)).pow(2).mean().backward()
    present = set(model.montage.sorted_regions)
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.startswith("region_conv."):
            grads = p.grad.flatten(1).abs().sum(1)
            assert all((grads[r] > 0) == (r in present) for r in range(5)), name
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
