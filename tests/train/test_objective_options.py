"""Objective options of masked-reconstruction pretraining (issue 12): reconstruction targets,
mask strategies, the VICReg term, the head init scale, their config keys, and short `pretrain`
runs with each."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from csbrain._checks import CSBrainError
from csbrain.config import CSBrainConfig
from csbrain.engine.distributed import DistInfo
from csbrain.models import CSBrainForPretraining, load_model
from csbrain.montage import Montage
from csbrain.train import pretrain
from csbrain.train.build import build_pretraining_model
from csbrain.train.losses import (
    log_spectrum,
    normalize_patches,
    reconstruction_loss,
    spectral_target,
    vicreg_loss,
)
from csbrain.train.masking import make_mask, region_mask
from csbrain.train.objectives import MaskedReconstruction
from tests.train.helpers import CHANNELS, pretrain_cfg, run_data

TINY = CSBrainConfig.from_preset("tiny", n_layers=1)

#: A 10-20 montage with all five regions.
TEN_TWENTY = ["Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8", "P7",
              "P3", "Pz", "P4", "P8", "O1", "O2"]


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- targets

def test_normalized_target_is_standardised_per_patch():
    x = 3.0 + 5.0 * torch.randn(4, 3, 5, 200)
    t = normalize_patches(x)
    assert t.shape == x.shape
    assert t.mean(dim=-1).abs().max() < 1e-5
    assert (t.std(dim=-1, unbiased=False) - 1).abs().max() < 1e-4
    assert torch.equal(normalize_patches(torch.zeros(1, 1, 1, 8)), torch.zeros(1, 1, 1, 8))


def test_spectral_target_matches_numpy():
    x = torch.randn(3, 2, 4, 200, dtype=torch.float64)
    spec = np.log(np.abs(np.fft.rfft(x.numpy(), axis=-1, norm="ortho")) + 1e-6)
    assert np.allclose(log_spectrum(x).numpy(), spec, atol=1e-4)
    flat = spec.reshape(-1, spec.shape[-1])
    expected = (spec - flat.mean(0)) / (flat.std(0) + 1e-6)
    t = spectral_target(x)
    assert t.shape == (3, 2, 4, 101) and not t.requires_grad
    assert np.allclose(t.numpy(), expected, atol=1e-4)


@pytest.mark.parametrize("kind", ["waveform", "normalized", "spectral", "waveform+spectral"])
def test_loss_is_zero_for_the_target_and_positive_otherwise(kind):
    x = torch.randn(4, 3, 5, 200)
    mask = make_mask("random", (4, 3, 5), 0.5, generator=_gen())
    wave = normalize_patches(x) if kind == "normalized" else x
    spec = spectral_target(x)
    exact = reconstruction_loss(kind, x, mask, waveform=wave, spectral=spec)
    assert exact.item() == pytest.approx(0.0, abs=1e-10)
    noisy = reconstruction_loss(kind, x, mask, waveform=wave + 1.0, spectral=spec + 1.0)
    expected = 2.0 if kind == "waveform+spectral" else 1.0
    assert noisy.item() == pytest.approx(expected, rel=1e-5)
    weighted = reconstruction_loss(kind, x, mask, waveform=wave + 1.0, spectral=spec + 1.0,
                                   spectral_weight=0.25)
    assert weighted.item() == pytest.approx(1.25 if kind == "waveform+spectral" else 1.0,
                                            rel=1e-5)
    # only masked patches count
    off = torch.where(mask[..., None], 0.0, 7.0)
    assert reconstruction_loss(kind, x, mask, waveform=wave + off,
                               spectral=spec + off[..., :101]).item() < 1e-10


def test_loss_needs_the_right_outputs():
    x, mask = torch.randn(2, 3, 4, 200), torch.ones(2, 3, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match="spectral"):
        reconstruction_loss("spectral", x, mask, waveform=x)
    with pytest.raises(ValueError, match="target='wave' is not allowed"):
        reconstruction_loss("wave", x, mask, waveform=x)


# ---------------------------------------------------------------- masks

def test_time_block_masks_are_contiguous_and_shared_by_channels():
    m = make_mask("time_block", (256, 4, 10), 0.4, generator=_gen())
    assert m.shape == (256, 4, 10) and m.dtype == torch.bool
    assert torch.equal(m, m[:, :1].expand_as(m))                       # same in every channel
    per = m[:, 0].long()
    assert (per.sum(1) == 4).all()                                     # round(0.4 * 10)
    assert ((per[:, 1:] - per[:, :-1]).abs().sum(1) <= 2).all()        # one run
    starts = per.argmax(1)
    assert len(starts.unique()) == 7                                   # every start 0..6 drawn
    # at least one masked and one visible patch even for extreme ratios
    for ratio in (0.01, 0.99):
        n = make_mask("time_block", (8, 2, 3), ratio, generator=_gen())[:, 0].sum(1)
        assert ((n >= 1) & (n <= 2)).all()


def test_channel_masks_are_constant_over_patches():
    m = make_mask("channel", (512, 6, 5), 0.5, generator=_gen())
    assert torch.equal(m, m[:, :, :1].expand_as(m))
    assert (m[:, :, 0].sum(1) == 3).all()
    assert (m[:, :, 0].float().mean(0) - 0.5).abs().max() < 0.1       # every channel alike
    assert (make_mask("channel", (8, 2, 3), 0.9, generator=_gen())[:, :, 0].sum(1) == 1).all()


def test_region_masks_cover_whole_regions():
    montage = Montage.from_names(TEN_TWENTY)
    regions = torch.tensor(montage.sorted_regions)
    assert len(regions.unique()) == 5
    for ratio in (0.3, 0.5, 0.7):
        m = make_mask("region", (400, len(regions), 3), ratio, generator=_gen(1),
                      sorted_regions=montage.sorted_regions)
        assert torch.equal(m, m[:, :, :1].expand_as(m))
        slots = m[:, :, 0]
        for r in regions.unique():
            inside = slots[:, regions == r]
            assert torch.equal(inside, inside[:, :1].expand_as(inside))   # whole region or none
        n = slots.sum(1)
        assert ((n >= 1) & (n < len(regions))).all()
        assert abs(slots.float().mean().item() - ratio) < 0.15, (ratio, slots.float().mean())
    with pytest.raises(ValueError, match="sorted_regions"):
        make_mask("region", (2, 3, 4), 0.5)
    with pytest.raises(ValueError, match="one per channel"):
        region_mask((2, 3, 4), 0.5, [0, 1])


@pytest.mark.parametrize("strategy", ["random", "time_block", "channel", "region"])
def test_masks_are_reproducible_from_the_generator(strategy):
    regions = Montage.from_names(TEN_TWENTY).sorted_regions
    shape = (16, len(regions), 6)
    g = _gen(5)
    a = make_mask(strategy, shape, 0.5, generator=g, sorted_regions=regions)
    state = g.get_state()
    b = make_mask(strategy, shape, 0.5, generator=g, sorted_regions=regions)
    assert not torch.equal(a, b)                                       # the stream moves on
    assert torch.equal(a, make_mask(strategy, shape, 0.5, generator=_gen(5),
                                    sorted_regions=regions))
    g.set_state(state)                                                 # resume
    assert torch.equal(b, make_mask(strategy, shape, 0.5, generator=g, sorted_regions=regions))


def test_bad_strategy_is_refused():
    with pytest.raises(CSBrainError, match="mask_strategy='blocks' is not allowed"):
        make_mask("blocks", (2, 3, 4), 0.5)


# ---------------------------------------------------------------- VICReg

def test_vicreg_is_large_for_collapsed_features_and_zero_for_whitened_ones():
    collapsed = torch.ones(64, 16) + 1e-3 * torch.randn(64, 16)
    assert vicreg_loss(collapsed).item() > 0.9
    z = torch.randn(256, 16, dtype=torch.float64)
    z = z - z.mean(0)
    cov = z.T @ z / (len(z) - 1)
    white = z @ torch.linalg.inv(torch.linalg.cholesky(cov)).T         # identity covariance
    assert vicreg_loss(white).item() < 1e-6
    # correlated features pay the covariance term
    assert vicreg_loss(torch.cat([white[:, :1]] * 16, dim=1)).item() > 5.0
    tokens = torch.zeros(8, 3, 4, 16, requires_grad=True)             # pooled over C, P
    loss = vicreg_loss(tokens + 0.01 * torch.randn(8, 3, 4, 16))
    loss.backward()
    assert tokens.grad is not None and tokens.grad.abs().sum() > 0
    assert vicreg_loss(torch.randn(1, 16)).item() == 0.0


# ---------------------------------------------------------------- model, objective, config

def test_spectral_head_round_trips_and_the_default_layout_is_unchanged(tmp_path):
    plain = CSBrainForPretraining(CHANNELS, TINY)
    assert plain.spectral_head is None and plain._task_kwargs() == {}
    assert not any(k.startswith("spectral_head") for k in plain.state_dict())
    model = CSBrainForPretraining(CHANNELS, TINY, spectral_head=True).eval()
    x, mask = torch.randn(2, 4, 2, 200), torch.zeros(2, 4, 2, dtype=torch.bool)
    recon, spec, tokens = model(x, mask, return_spectral=True, return_features=True)
    assert recon.shape == x.shape and spec.shape == (2, 4, 2, 101)
    assert tokens.shape == (2, 4, 2, model.config.d_model)
    assert torch.equal(recon, model(x, mask))
    model.save_pretrained(tmp_path / "m")
    loaded = load_model(tmp_path / "m").eval()
    assert isinstance(loaded, CSBrainForPretraining) and loaded.spectral_head is not None
    assert torch.equal(loaded(x, mask, return_spectral=True)[1], spec)
    with pytest.raises(ValueError, match="spectral_head=True"):
        plain(x, mask, return_spectral=True)


def test_head_init_scale_and_target_build_the_heads():
    rd = run_data(4)
    torch.manual_seed(0)
    ref = build_pretraining_model(rd, pretrain_cfg())
    torch.manual_seed(0)
    small = build_pretraining_model(rd, pretrain_cfg("head_init_scale=0.01"))
    assert torch.allclose(small.head.weight, 0.01 * ref.head.weight)
    assert torch.allclose(small.head.bias, 0.01 * ref.head.bias)
    assert torch.equal(small.backbone.patch_embedding.proj_in[0].weight,
                       ref.backbone.patch_embedding.proj_in[0].weight)
    x = torch.stack([rd.dataset[i][0] for i in range(4)])
    with torch.no_grad():
        assert small(x).var() < 1e-2 * ref(x).var()
    spec = build_pretraining_model(rd, pretrain_cfg("target=spectral"))
    assert spec.spectral_head is not None and not spec.head.weight.requires_grad
    both = build_pretraining_model(rd, pretrain_cfg("target=waveform+spectral"))
    assert both.spectral_head is not None and both.head.weight.requires_grad


@pytest.mark.parametrize("override, message", [
    ("target=pixels", "target='pixels' is not allowed"),
    ("mask_strategy=blocks", "mask_strategy='blocks' is not allowed"),
    ("vicreg_weight=-1", "vicreg_weight must be >= 0.0, got -1"),
    ("head_init_scale=0", "head_init_scale must be > 0.0, got 0"),
    ("spectral_weight=-0.5", "spectral_weight must be >= 0.0, got -0.5"),
    ("spectral_weight=2", "spectral_weight=2.0 only applies to target='waveform\\+spectral'"),
])
def test_config_refuses_bad_options(override, message):
    extra = ["target=waveform+spectral"] if override.startswith("spectral_weight=-") else []
    with pytest.raises(ValueError, match=message):
        pretrain_cfg(override, *extra)


def test_objective_adds_vicreg_and_evaluates_the_training_target():
    rd = run_data(8)
    torch.manual_seed(0)
    model = build_pretraining_model(rd, pretrain_cfg("target=waveform+spectral"))
    x = torch.stack([rd.dataset[i][0] for i in range(8)])
    info = DistInfo()
    plain = MaskedReconstruction(0.5, target="waveform+spectral", seed=3)
    reg = MaskedReconstruction(0.5, target="waveform+spectral", seed=3, vicreg_weight=2.0)
    model.eval()
    a, b = plain.loss(model, (x,), info), reg.loss(model, (x,), info)
    mask = plain.draw_mask(model, x, MaskedReconstruction(0.5, seed=3).generator)
    _, tokens = plain.reconstruction(model, x, mask, features=True)
    assert b.item() - a.item() == pytest.approx(2.0 * vicreg_loss(tokens).item(), rel=1e-4)
    val = plain.evaluate(model, rd.dataset, info)["loss"]
    wave = MaskedReconstruction(0.5, seed=3).evaluate(model, rd.dataset, info)["loss"]
    assert val > wave > 0                                              # the spectral term counts


@pytest.mark.parametrize("overrides", [
    ("target=normalized",),
    ("target=spectral", "mask_strategy=time_block"),
    ("target=waveform+spectral", "spectral_weight=0.5", "mask_strategy=channel"),
    ("mask_strategy=region", "vicreg_weight=1", "head_init_scale=0.1", "mask_token=learned"),
])
def test_pretrain_runs_with_each_option(tmp_path, overrides):
    cfg = pretrain_cfg("epochs=1", "val_fraction=0.25", "val_by=window", *overrides)
    result = pretrain(cfg, run_data(20), tmp_path / "pre")
    log = [json.loads(ln) for ln in (tmp_path / "pre" / "metrics.jsonl").read_text().splitlines()]
    train = [r["train_loss"] for r in log if "train_loss" in r]
    assert result.state.step == 2 and train and all(np.isfinite(train))
    assert any(np.isfinite(r.get("val_loss", np.nan)) for r in log)
    model = load_model(tmp_path / "pre")
    assert (model.spectral_head is not None) == ("spectral" in overrides[0])
