"""Fine-tuning with ``sequence_length`` (the released ISRUC protocol): the loss is the released
one, unlabelled windows are left out, metrics pool the windows of every sequence, and the saved
model is evaluated and predicts recordings window by window."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from csbrain.eval.config import InferenceConfig
from csbrain.eval.evaluate import evaluate
from csbrain.eval.predict import predict
from csbrain.models import CSBrainForSequenceClassification, load_model
from csbrain.train import FinetuneConfig, finetune, load_run_config
from csbrain.train.losses import supervised_loss
from tests.train.helpers import finetune_cfg, make_store, write_edf

CPU = InferenceConfig(device="cpu", progress=False)


def test_loss_is_the_released_sequence_loss_and_skips_unlabelled_windows():
    torch.manual_seed(0)
    out, y = torch.randn(4, 20, 5), torch.randint(0, 5, (4, 20))
    # CSBrain finetune_trainer.py: CrossEntropyLoss(label_smoothing=0.1)(pred.transpose(1, 2), y)
    want = F.cross_entropy(out.transpose(1, 2), y, label_smoothing=0.1)
    got = supervised_loss(out, y, "multiclass", label_smoothing=0.1)
    torch.testing.assert_close(got, want)
    y2 = y.clone()
    y2[0, :5] = -1
    keep = y2.reshape(-1) >= 0
    want = F.cross_entropy(out.reshape(-1, 5)[keep], y.reshape(-1)[keep], label_smoothing=0.1)
    torch.testing.assert_close(supervised_loss(out, y2, "multiclass", label_smoothing=0.1), want)
    binary = supervised_loss(out[..., :1], (y > 2).float(), "binary")
    torch.testing.assert_close(binary, F.binary_cross_entropy_with_logits(
        out[..., 0].reshape(-1), (y > 2).float().reshape(-1)))


@pytest.mark.parametrize("overrides, message", [
    (["sequence_length=4", "head=attention"], "head='attention' is not allowed with "
                                              "sequence_length=4; expected one of"),
    (["sequence_length=4", "method=linear"], "method='linear' is not available with "
                                             "sequence_length=4"),
    (["sequence_length=4", "shuffle=block"], "shuffle='block' is not available"),
    (["sequence_length=-1"], "sequence_length must be >= 0"),
])
def test_config_checks(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_run_config(FinetuneConfig, None, overrides)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("seq")
    store = make_store(root, n_recordings=6)             # 6 recordings x 5 windows of 2 s
    cfg = finetune_cfg("sequence_length=2", "head=flatten", "epochs=2", "batch_size=2",
                       "split.val_fraction=0.34", "split.test_fraction=0.34")
    res = finetune(cfg, store, root / "run")
    return root, store, res


def test_finetune_trains_a_sequence_model_and_scores_every_window(trained):
    _, _, res = trained
    model = load_model(res.run_dir)
    assert isinstance(model, CSBrainForSequenceClassification) and model.n_outputs == 1
    meta = json.loads((res.run_dir / "config.json").read_text())
    assert meta["extra"]["sequence_length"] == 2
    m = res.metrics
    assert sum(m["n"].values()) == 12                    # 6 recordings x 2 sequences of 2
    assert m["test"]["n"] == 2 * m["n"]["test"]          # metrics over windows
    assert np.sum(m["test"]["confusion_matrix"]) == m["test"]["n"]


def test_evaluate_reads_the_store_in_sequences(trained):
    _, store, res = trained
    got = evaluate(res.run_dir, store, CPU)
    saved = res.metrics["test"]
    assert got["n"] == saved["n"] and got["confusion_matrix"] == saved["confusion_matrix"]
    assert got["balanced_accuracy"] == pytest.approx(saved["balanced_accuracy"])


def test_predict_gives_one_row_per_window(trained, tmp_path):
    _, _, res = trained
    edf = write_edf(tmp_path / "new.edf", seconds=10.0, seed=5)
    rows = predict([edf], res.run_dir, tmp_path / "p.csv", CPU, stream=False)
    assert [r["start_s"] for r in rows] == [0.0, 2.0, 4.0, 6.0, 8.0]
    streamed = predict([edf], res.run_dir, tmp_path / "s.csv", CPU)
    assert len(streamed) == 5
    model = load_model(res.run_dir).eval()
    from csbrain.eval.predict import load_prep_config, prepare_like_model

    meta = json.loads((res.run_dir / "config.json").read_text())
    _, w = prepare_like_model(edf, load_prep_config(meta, CPU))
    x = torch.from_numpy(np.asarray(w.x, dtype=np.float32))
    with torch.no_grad():                                 # sequences (0, 1), (2, 3), then (4)
        logits = torch.cat([model(x[:4].unflatten(0, (2, 2))).reshape(-1),
                            model(x[4:].unsqueeze(0)).reshape(-1)])
    prob = torch.sigmoid(logits).numpy()
    np.testing.assert_allclose([r["prob_b"] for r in rows], prob, atol=1e-5)


def test_lora_trains_the_whole_sequence_head():
    from csbrain.config import CSBrainConfig
    from csbrain.train.adapt import apply_lora

    model = CSBrainForSequenceClassification(
        ["O1", "Fp1", "C3", "T7"], CSBrainConfig.from_preset("tiny").replace(n_layers=1),
        n_outputs=3, n_times=400)
    wrapped = apply_lora(model, finetune_cfg("sequence_length=2", "method=lora"))
    trained = {n.split(".")[2] for n, p in wrapped.named_parameters()
               if p.requires_grad and "lora_" not in n}
    assert trained == {"head", "sequence_encoder", "classifier"}
    assert not any(p.requires_grad for n, p in wrapped.named_parameters()
                   if ".backbone." in n and "lora_" not in n)


def test_a_run_saved_before_an_option_existed_still_resumes(tmp_path):
    """A run folder written before ``sequence_length`` existed resumes (a missing option is
    its default); a missing option set to another value is still refused."""
    import json as _json

    from tests.train.helpers import run_data

    cfg = finetune_cfg("max_steps=4", "checkpoint_every=2")
    rd = run_data(16)
    finetune(cfg, rd, tmp_path / "r")
    path = tmp_path / "r" / "run_config.json"
    saved = _json.loads(path.read_text())
    del saved["config"]["sequence_length"]
    path.write_text(_json.dumps(saved))
    finetune(cfg, rd, tmp_path / "r", resume=True)
    with pytest.raises(ValueError, match="sequence_length"):
        finetune(finetune_cfg("max_steps=4", "checkpoint_every=2", "sequence_length=2",
                              "head=flatten"), rd, tmp_path / "r", resume=True)


def test_a_sequence_model_without_its_length_is_a_clear_error(trained, tmp_path):
    import shutil

    _, store, res = trained
    folder = tmp_path / "m"
    shutil.copytree(res.run_dir, folder, ignore=shutil.ignore_patterns("run_config.json"))
    meta = json.loads((folder / "config.json").read_text())
    del meta["extra"]["sequence_length"]
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="records no extra.sequence_length"):
        evaluate(folder, store, CPU)
    edf = write_edf(tmp_path / "new.edf", seconds=4.0, seed=5)
    with pytest.raises(ValueError, match="records no extra.sequence_length"):
        predict([edf], folder, tmp_path / "p.csv", CPU)
