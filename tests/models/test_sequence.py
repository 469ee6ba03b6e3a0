"""The sequence model (the released ISRUC model): released layout and composition, shapes,
round trip, context across windows."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from csbrain import CSBrainConfig
from csbrain.models import CSBrainForSequenceClassification, load_model

TINY = CSBrainConfig.from_preset("tiny").replace(n_layers=1)


def _released_head(n_in: int, n_classes: int) -> nn.Module:
    """The head of CSBrain ``models/model_for_isruc.py`` (its ``head``, ``sequence_encoder``,
    ``classifier``), as that file builds it."""
    m = nn.Module()
    m.head = nn.Sequential(nn.Linear(n_in, 512), nn.GELU())
    layer = nn.TransformerEncoderLayer(d_model=512, nhead=4, dim_feedforward=2048,
                                       batch_first=True, activation=F.gelu, norm_first=True)
    m.sequence_encoder = nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=False)
    m.classifier = nn.Linear(512, n_classes)
    return m


def test_head_has_the_released_names_shapes_and_composition():
    torch.manual_seed(0)
    model = CSBrainForSequenceClassification("ISRUC", TINY, n_outputs=5, n_times=600).eval()
    d = TINY.d_model
    ref = _released_head(6 * 3 * d, 5).eval()
    own = {k: v for k, v in model.state_dict().items() if not k.startswith("backbone.")}
    assert {k: tuple(v.shape) for k, v in own.items()} == \
        {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    model.load_state_dict({**model.state_dict(), **ref.state_dict()})
    x = torch.randn(2, 4, 6, 3, 200)                              # (B, L, C, P, S)
    with torch.no_grad():
        # released forward: backbone per epoch, view (B, L, C*P*D), head, encoder, classifier
        tokens = model.backbone(x.view(8, 6, 3, 200))
        want = ref.classifier(ref.sequence_encoder(ref.head(tokens.view(2, 4, 6 * 3 * d))))
        got = model(x)
    assert got.shape == (2, 4, 5)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    torch.testing.assert_close(model(x.flatten(3)), got)          # raw (B, L, C, T) as well


def test_each_window_is_labelled_in_the_context_of_its_sequence():
    torch.manual_seed(1)
    model = CSBrainForSequenceClassification("ISRUC", TINY, n_outputs=3, n_times=400).eval()
    x = torch.randn(1, 5, 6, 2, 200)
    y = x.clone()
    y[0, 3] = torch.randn(6, 2, 200)                              # change window 3 only
    with torch.no_grad():
        a, b = model(x), model(y)
    assert not torch.allclose(a[0, 0], b[0, 0])                   # window 0 sees window 3
    with torch.no_grad():                                         # any sequence length
        assert model(x[:, :2]).shape == (1, 2, 3)


def test_round_trip_reset_head_and_mean_features(tmp_path):
    torch.manual_seed(2)
    model = CSBrainForSequenceClassification(
        "ISRUC", TINY, n_outputs=5, n_times=400, d_sequence=32, sequence_heads=2,
        sequence_feedforward=64, sequence_layers=2).eval()
    model.save_pretrained(tmp_path / "m")
    again = load_model(tmp_path / "m").eval()
    assert type(again) is CSBrainForSequenceClassification
    assert len(again.sequence_encoder.layers) == 2 and again.final_layer.in_features == 32
    x = torch.randn(3, 2, 6, 2, 200)
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x), rtol=0, atol=0)
    again.reset_head(2)
    assert again(x).shape == (3, 2, 2)
    mean = CSBrainForSequenceClassification("ISRUC", TINY, epoch_features="mean")
    assert mean(torch.randn(1, 3, 6, 4, 200)).shape == (1, 3, 5)  # any window length


@pytest.mark.parametrize("kwargs, message", [
    ({"epoch_features": "flatten"}, "epoch_features='flatten' needs n_times"),
    ({"epoch_features": "max"}, "epoch_features='max' is not allowed"),
    ({"n_times": 400, "d_sequence": 30, "sequence_heads": 4}, "multiple of sequence_heads=4"),
])
def test_bad_arguments_name_the_parameter(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CSBrainForSequenceClassification("ISRUC", TINY, **kwargs)


def test_window_length_mismatch_and_bad_rank_are_clear():
    model = CSBrainForSequenceClassification("ISRUC", TINY, n_times=400)
    with pytest.raises(ValueError, match="3 patches per window but the model was built for "
                                         "n_times=400"):
        model(torch.randn(1, 2, 6, 3, 200))
    with pytest.raises(ValueError, match="expected sequences"):
        model(torch.randn(6, 400))
    # a batch of single windows (B, C, P, S) is not read as sequences, even when P == C
    with pytest.raises(ValueError, match="expected sequences"):
        model(torch.randn(3, 6, 6, 200))
    mean = CSBrainForSequenceClassification("ISRUC", TINY, epoch_features="mean")
    with pytest.raises(ValueError, match="expected sequences"):
        mean(torch.randn(3, 4, 2, 200))                           # 4 channels, not 6
