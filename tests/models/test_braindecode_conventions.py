"""The model as braindecode and OpenEEGBench build and use one: keyword signal parameters, raw
``(batch, n_chans, n_times)`` input, logits out, ``return_features``, ``reset_head``,
``final_layer``, ``get_config`` / ``from_config``; braindecode's ``EEGClassifier`` if it imports."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from csbrain import CSBrainConfig, CSBrainForClassification

TINY = CSBrainConfig.from_preset("tiny", n_layers=1)
CHS = [{"ch_name": n} for n in ("C3", "Cz", "C4")]


def braindecode_style(**kwargs) -> CSBrainForClassification:
    return CSBrainForClassification(config=TINY, **{**dict(n_outputs=4, n_chans=3, n_times=400,
                                                           sfreq=200.0, chs_info=CHS), **kwargs})


def test_keyword_signal_parameters_and_raw_input():
    torch.manual_seed(0)
    model = braindecode_style().eval()
    x = torch.randn(2, 3, 400)                                    # (batch, n_chans, n_times)
    out = model(x)
    assert out.shape == (2, 4) and not torch.allclose(out.softmax(1).sum(1), out.sum(1))
    assert model.n_outputs == 4 and model.n_times == 400 and model.backbone.n_chans == 3
    seconds = braindecode_style(n_times=None, input_window_seconds=2.0)
    assert seconds.n_times == 400
    with pytest.raises(ValueError, match="n_times=400 does not match input_window_seconds=3.0"):
        braindecode_style(input_window_seconds=3.0)
    with pytest.raises(ValueError, match="n_chans=4 does not match the montage's 3 channels"):
        braindecode_style(n_chans=4)
    with pytest.raises(ValueError, match="sfreq=250.0 is not supported"):
        braindecode_style(sfreq=250.0)


def test_return_features_forward_features_and_final_layer():
    torch.manual_seed(0)
    model = braindecode_style().eval()
    x = torch.randn(2, 3, 400)
    with torch.no_grad():
        out = model(x, return_features=True)
        assert set(out) == {"features", "cls_token", "logits"}
        assert out["features"].shape == (2, 3, 2, 40) and out["cls_token"].shape == (2, 40)
        torch.testing.assert_close(out["features"], model.forward_features(x))
        torch.testing.assert_close(out["logits"], model(x))
    assert isinstance(model.final_layer, nn.Linear) and model.final_layer.out_features == 4
    assert model.final_layer is model.head.fc
    flat = braindecode_style(head="flatten")
    assert flat.final_layer is flat.head[7] and flat.final_layer.out_features == 4
    model.final_layer = nn.Identity()                             # OpenEEGBench's feature probe
    with torch.no_grad():
        assert model(x).shape == (2, 40)
    assert "final_layer" not in dict(model.named_children())   # saved keys are unchanged
    assert set(model.state_dict()) == set(braindecode_style().state_dict()) - {
        "head.fc.weight", "head.fc.bias"}


@pytest.mark.parametrize("head", ["mean", "flatten", "attention"])
def test_reset_head_keeps_the_backbone(head):
    torch.manual_seed(0)
    model = braindecode_style(head=head).eval()
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    model.reset_head(7)
    assert model.n_outputs == 7 and model.final_layer.out_features == 7
    assert model(torch.randn(2, 3, 400)).shape == (2, 7)
    torch.testing.assert_close(model.backbone.state_dict(), before, rtol=0, atol=0)
    assert model.get_config()["n_outputs"] == 7


def test_get_config_from_config_round_trip():
    torch.manual_seed(0)
    model = braindecode_style(head="attention").eval()
    config = json.loads(json.dumps(model.get_config()))           # JSON-able
    assert config["n_outputs"] == 4 and config["head"] == "attention"
    again = CSBrainForClassification.from_config(config).eval()
    again.load_state_dict(model.state_dict(), strict=True)        # same architecture
    x = torch.randn(1, 3, 400)
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x), rtol=0, atol=0)
    with pytest.raises(ValueError, match="expected 'montage' and 'config'"):
        CSBrainForClassification.from_config({"n_outputs": 2})


def test_braindecode_eeg_classifier_trains_the_model():
    try:
        from braindecode import EEGClassifier
    except Exception as err:  # noqa: BLE001  (not installed, or its torchaudio fails to load)
        if isinstance(err, ModuleNotFoundError) and err.name == "braindecode":
            pytest.skip("braindecode is not installed: it is not a dependency of csbrain (1.8 "
                        "requires a torchaudio that does not load beside torch 2.13); csbrain "
                        "follows its conventions instead")
        pytest.skip(f"braindecode does not import beside this torch ({type(err).__name__}: "
                    f"{str(err).splitlines()[0] if str(err) else ''})")
    import numpy as np

    torch.manual_seed(0)
    x = np.random.default_rng(0).normal(size=(16, 3, 400)).astype(np.float32)
    y = np.arange(16) % 4
    clf = EEGClassifier(braindecode_style(), max_epochs=1, batch_size=8, train_split=None,
                        verbose=0)
    clf.fit(x, y)
    assert clf.predict(x).shape == (16,)
