"""Evaluation, prediction and embedding of new recordings with a model fine-tuned on a store of
EDF files the test writes; mismatched montage / preprocessing give clear errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from csbrain.data import find_recordings, prepare
from csbrain.eval.config import InferenceConfig
from csbrain.eval.evaluate import evaluate
from csbrain.eval.predict import embed, predict
from csbrain.train import finetune, pretrain
from tests.train.helpers import finetune_cfg, make_store, prep_config, pretrain_cfg, write_edf

CPU = InferenceConfig(device="cpu", progress=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("pred")
    store = make_store(root)                       # 4 recordings x 5 windows of 2 s
    run = finetune(finetune_cfg("epochs=2", "split.val_fraction=0.25",
                                "split.test_fraction=0.25"), store, root / "run").run_dir
    return root, store, run


def test_predict_an_edf_gives_one_row_per_window(trained, tmp_path):
    _, _, run = trained
    edf = write_edf(tmp_path / "new_recording.edf", seconds=12.0, sfreq=256.0, seed=9)
    rows = predict([edf], run, tmp_path / "out" / "pred.csv", CPU)
    assert len(rows) == 6                                     # 12 s / 2-s windows
    with open(tmp_path / "out" / "pred.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 6
    assert list(table[0]) == ["recording", "window", "start_s", "label", "predicted",
                              "predicted_name", "prob_a", "prob_b"]
    assert [float(r["start_s"]) for r in table] == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    assert {r["recording"] for r in table} == {"new_recording"}
    for r in table:
        p = float(r["prob_a"]) + float(r["prob_b"])
        assert p == pytest.approx(1.0, abs=1e-5)
        assert r["predicted_name"] == "ab"[int(r["predicted"])]
    assert {r["label"] for r in table} == {"-1"}              # a new file has no label


def test_predict_uses_the_saved_preprocessing(trained, tmp_path):
    _, _, run = trained
    saved = json.loads((run / "config.json").read_text())["extra"]["preprocessing"]
    assert saved["windows"]["length_s"] == 2.0 and saved["filter"]["h_freq"] == 40.0
    edf = write_edf(tmp_path / "sub-9_task-b.edf", seconds=6.0, seed=3)
    rows = predict([edf], run, tmp_path / "p.csv", CPU)
    assert [r["label"] for r in rows] == [1, 1, 1]            # label from the id, as trained
    with pytest.raises(ValueError, match="prep_config=.* but the model records its own"):
        predict([edf], run, tmp_path / "p.csv", InferenceConfig(prep_config="x.toml"))


def test_embed_pooled_and_tokens(trained, tmp_path):
    root, store, run = trained
    edf = write_edf(tmp_path / "rec.edf", seconds=8.0, seed=4)
    info = embed([edf], run, tmp_path / "e.npz", CPU)
    z = np.load(tmp_path / "e.npz")
    assert z["embeddings"].shape == (4, 40) and info["shape"] == [4, 40]
    assert z["recording"].tolist() == ["rec"] * 4 and z["start_s"].tolist() == [0, 2, 4, 6]
    embed([edf], run, tmp_path / "t.npy", InferenceConfig(pooled=False, progress=False))
    assert np.load(tmp_path / "t.npy").shape == (4, 4, 2, 40)   # (n, C, P, D)
    # a pretrained backbone reads any montage
    pre = pretrain(pretrain_cfg("max_steps=1"), store, root / "pre_embed").run_dir
    other = write_edf(tmp_path / "other.edf", seconds=4.0, channels=["Fp2", "C4", "O2"])
    embed([other], pre, tmp_path / "o.npy", CPU)
    assert np.load(tmp_path / "o.npy").shape == (2, 40)
    with pytest.raises(ValueError, match="must end with .npy or .npz"):
        embed([edf], run, tmp_path / "e.txt", CPU)


def test_evaluate_run_on_its_store(trained):
    _, store, run = trained
    m = evaluate(run, store, CPU)
    assert m["task"] == "binary" and m["split"] == "test"
    saved = json.loads((run / "metrics.json").read_text())["test"]
    assert m["balanced_accuracy"] == pytest.approx(saved["balanced_accuracy"])
    assert m["confusion_matrix"] == saved["confusion_matrix"]          # the same test windows
    every = evaluate(run, store, InferenceConfig(split="all", device="cpu", progress=False))
    assert every["n"] == 20


def test_montage_mismatch_is_a_clear_error(trained, tmp_path):
    _, _, run = trained
    edf = write_edf(tmp_path / "wrong.edf", seconds=4.0, channels=["Fp2", "C4", "O2", "T8"])
    with pytest.raises(ValueError, match=r"reads 4 channels \[O1, Fp1, C3, T7\] but "
                                         r".*wrong.edf.*missing \[O1, Fp1, C3, T7\]"):
        predict([edf], run, tmp_path / "p.csv", CPU)


def test_preprocessing_mismatch_is_a_clear_error(trained, tmp_path):
    root, _, run = trained
    other = tmp_path / "store2"
    prepare(find_recordings([root / "edf"]), other, prep_config(**{"filter.h_freq": 30.0}))
    with pytest.raises(ValueError, match=r"prepared differently .*filter.h_freq: 40.0 != 30.0"):
        evaluate(run, other, CPU)


def test_unwritable_output_fails_first(trained, tmp_path):
    _, _, run = trained
    (tmp_path / "file").write_text("")
    with pytest.raises(PermissionError, match="cannot write"):
        predict([tmp_path / "missing.edf"], run, tmp_path / "file" / "p.csv", CPU)
