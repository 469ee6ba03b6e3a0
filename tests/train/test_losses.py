"""Masks, the masked reconstruction loss (and the released defect it fixes), supervised losses."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from csbrain.montage import Montage
from csbrain.train.losses import masked_mse, supervised_loss
from csbrain.train.masking import bernoulli_mask, sorted_target, unsort_slots
from tests.train.helpers import CHANNELS


class SortedIdentity(torch.nn.Module):
    """Follows the CSBrainForPretraining contract (reconstruction in sorted channel order) and
    reconstructs perfectly: the ideal model."""

    def __init__(self, montage: Montage) -> None:
        super().__init__()
        self.order = torch.tensor(montage.order)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return x[:, self.order]


def released_loss(recon: torch.Tensor, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The released comparison: sorted reconstruction against the *unsorted* input."""
    return F.mse_loss(recon[mask], x[mask])


def test_mask_is_bernoulli_reproducible_and_shaped():
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    m1 = bernoulli_mask((64, 19, 30), 0.5, generator=g1)
    assert m1.dtype == torch.bool and m1.shape == (64, 19, 30)
    assert torch.equal(m1, bernoulli_mask((64, 19, 30), 0.5, generator=g2))
    assert abs(m1.float().mean().item() - 0.5) < 0.01            # 36,480 draws
    assert abs(bernoulli_mask((64, 19, 30), 0.2).float().mean().item() - 0.2) < 0.01
    with pytest.raises(ValueError, match="mask_ratio must be < 1"):
        bernoulli_mask((2, 3, 4), 1.0)


def test_correct_loss_is_zero_for_a_perfect_model_and_the_released_one_is_not():
    montage = Montage.from_names(CHANNELS)
    assert list(montage.order) != list(range(len(CHANNELS)))     # sorting moves channels
    x = torch.randn(8, len(CHANNELS), 3, 200)
    mask = bernoulli_mask((8, len(CHANNELS), 3), 0.5, generator=torch.Generator().manual_seed(0))
    recon = SortedIdentity(montage)(x, mask)
    ours = masked_mse(recon, sorted_target(x, montage.order), mask)
    assert ours.item() == 0.0
    released = released_loss(recon, x, mask)
    assert released.item() > 1.0   # compares other channels: ~2 x unit variance
    # the defect disappears only when sorting is the identity
    same = Montage.from_names(list(montage.sorted_channels))
    assert list(same.order) == list(range(len(CHANNELS)))
    x2 = sorted_target(x, montage.order)
    assert released_loss(SortedIdentity(same)(x2, mask), x2, mask).item() == 0.0


def test_masked_mse_ignores_visible_patches_and_matches_the_mean():
    x = torch.randn(4, 3, 5, 200)
    mask = torch.zeros(4, 3, 5, dtype=torch.bool)
    mask[0, 1, 2] = mask[3, 0, 4] = True
    recon = x.clone()
    recon[~mask] += 100.0                                       # errors on visible patches only
    assert masked_mse(recon, x, mask).item() == 0.0
    recon[mask] += 2.0
    assert masked_mse(recon, x, mask).item() == pytest.approx(4.0)
    # data-parallel normalisation: sum over ranks of rank losses with n_masked = global / world
    assert masked_mse(recon, x, mask, n_masked=torch.tensor(1.0)).item() == pytest.approx(8.0)
    assert masked_mse(recon, x, torch.zeros_like(mask)).item() == 0.0   # nothing masked


def test_unsort_inverts_sort():
    order = Montage.from_names(CHANNELS).order
    x = torch.randn(2, 4, 1, 200)
    assert torch.equal(unsort_slots(sorted_target(x, order), order), x)


def test_supervised_losses_follow_the_spec():
    torch.manual_seed(0)
    logits, y = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    assert supervised_loss(logits, y, "multiclass", label_smoothing=0.1).item() == \
        pytest.approx(F.cross_entropy(logits, y, label_smoothing=0.1).item())
    one, yb = torch.randn(6, 1), torch.tensor([0, 1, 1, 0, 1, 0])
    assert supervised_loss(one, yb, "binary").item() == pytest.approx(
        F.binary_cross_entropy_with_logits(one[:, 0], yb.float()).item())
    with pytest.raises(ValueError, match="a binary head has one logit"):
        supervised_loss(logits, yb, "binary")
    pred, target = torch.randn(6, 1), torch.randn(6)
    assert supervised_loss(pred, target, "regression").item() == pytest.approx(
        float(np.mean((pred[:, 0].numpy() - target.numpy()) ** 2)), rel=1e-6)
