"""ONNX and TorchScript export: dynamic batch, parity with eager PyTorch within 1e-4 (fp32),
checked here independently with onnxruntime; the ``csbrain export`` command."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from csbrain import CSBrain, CSBrainConfig, CSBrainForClassification
from csbrain.models.export import export_model

TINY = CSBrainConfig.from_preset("tiny", n_layers=1)
CHANNELS = ["O1", "Fp1", "C3", "T7"]            # input order differs from the sorted order


def tiny_classifier() -> CSBrainForClassification:
    torch.manual_seed(0)
    return CSBrainForClassification(CHANNELS, TINY, n_outputs=3, n_times=400).eval()


def eager(model, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def test_onnx_export_has_a_dynamic_batch_and_matches_eager(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    model = tiny_classifier()
    res = export_model(model, tmp_path / "m.onnx")
    assert res.format == "onnx" and res.input_shape == ("batch", 4, 400)
    assert res.max_abs_diff is not None and res.max_abs_diff <= 1e-4
    session = ort.InferenceSession(str(res.path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert inp.name == "eeg" and out.name == "output" and not isinstance(inp.shape[0], int)
    import onnx  # onnxscript's dependency: present with it

    proto = onnx.load(str(res.path))
    onnx.checker.check_model(proto)
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [4, 400]
    for batch in (1, 5):
        x = np.random.default_rng(batch).normal(size=(batch, 4, 400)).astype(np.float32)
        got = session.run(None, {"eeg": x})[0]
        assert got.shape == (batch, 3)
        np.testing.assert_allclose(got, eager(model, x), rtol=0, atol=1e-4)
    assert model.backbone.fused_cpu and model.backbone.check_finite   # the model is untouched


def test_torchscript_export_matches_eager(tmp_path):
    model = tiny_classifier()
    res = export_model(model, tmp_path / "m.pt", format="torchscript")
    assert res.max_abs_diff <= 1e-4
    loaded = torch.jit.load(str(res.path))
    x = np.random.default_rng(0).normal(size=(6, 4, 400)).astype(np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(loaded(torch.from_numpy(x)).numpy(), eager(model, x),
                                   rtol=0, atol=1e-4)


def test_backbone_export_needs_n_times(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    torch.manual_seed(0)
    backbone = CSBrain(CHANNELS, TINY).eval()
    with pytest.raises(ValueError, match=r"n_times is not set: pass n_times="):
        export_model(backbone, tmp_path / "b.onnx")
    with pytest.raises(ValueError, match="n_times=300 is not a multiple of the patch size 200"):
        export_model(backbone, tmp_path / "b.onnx", n_times=300)
    res = export_model(backbone, tmp_path / "b.onnx", n_times=200)
    assert res.max_abs_diff <= 1e-4


def test_export_command(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from csbrain.cli import main

    tiny_classifier().save_pretrained(tmp_path / "model")
    assert main(["export", str(tmp_path / "model"), "--format", "onnx",
                 "--out", str(tmp_path / "out" / "m.onnx")]) == 0
    out = capsys.readouterr().out
    assert "m.onnx (onnx, input ('batch', 4, 400)); max |difference| with eager" in out
    assert (tmp_path / "out" / "m.onnx").is_file()
    assert main(["export", str(tmp_path / "missing"), "--out", str(tmp_path / "x.onnx")]) == 2
    assert "csbrain export: error: " in capsys.readouterr().err


def test_released_checkpoint_exports_within_1e4(golden, tmp_path):
    """Real weights (the authors' 2-layer golden checkpoint): the ONNX file reproduces eager
    PyTorch within 1e-4; export_model reads the .pth with the montage it is given."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    res = export_model(golden / "csbrain_official_2layer.pth", tmp_path / "rel.onnx",
                       n_times=400, montage="HMC")
    assert res.input_shape == ("batch", 4, 400)
    assert res.max_abs_diff <= 1e-4 and res.max_abs_output > 1.0


@pytest.mark.parametrize("fmt, suffix", [("onnx", "onnx"), ("torchscript", "pt")])
def test_sequence_model_exports_with_its_sequence_length(tmp_path, fmt, suffix):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnxscript")
    from csbrain.models import CSBrainForSequenceClassification

    torch.manual_seed(0)
    model = CSBrainForSequenceClassification(CHANNELS, TINY, n_outputs=5, n_times=400,
                                             d_sequence=32, sequence_feedforward=64).eval()
    with pytest.raises(ValueError, match="pass sequence_length"):
        export_model(model, tmp_path / f"s.{suffix}", format=fmt)
    model.save_pretrained(tmp_path / "m", extra={"sequence_length": 3})
    res = export_model(tmp_path / "m", tmp_path / f"s.{suffix}", format=fmt)
    assert res.input_shape == ("batch", 3, 4, 400) and res.max_abs_diff <= 1e-4
    with pytest.raises(ValueError, match="sequence_length=3 applies to sequence models"):
        export_model(tiny_classifier(), tmp_path / f"c.{suffix}", format=fmt, sequence_length=3)
