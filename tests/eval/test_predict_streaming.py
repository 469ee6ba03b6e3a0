"""Streaming predict / embed: chunked results equal whole-file ones, several files per call,
outputs appear only complete, ``bf16`` is refused with one line where unsupported."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import csbrain.eval.predict as predict_mod
from csbrain.eval.config import InferenceConfig
from csbrain.eval.predict import embed, predict
from csbrain.eval.streaming import bf16_support
from tests.train.helpers import finetune_cfg, make_store, write_edf

CPU = InferenceConfig(device="cpu", progress=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from csbrain.train import finetune

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("stream")
    store = make_store(root)
    return finetune(finetune_cfg("epochs=1", "split.val_fraction=0.25",
                                 "split.test_fraction=0.25"), store, root / "run").run_dir


def _probs(rows):
    return np.array([[r["prob_a"], r["prob_b"]] for r in rows])


def test_streamed_predictions_equal_whole_file(run, tmp_path, caplog):
    # 200 Hz needs no resampling: chunked preparation equals the default whole-file one
    files = [write_edf(tmp_path / f"r{i}.edf", seconds=41.0, sfreq=200.0, seed=i)
             for i in range(2)]
    whole = predict(files, run, tmp_path / "w.csv", CPU, stream=False)
    for chunk_s in (5.3, 17.0):
        with caplog.at_level("INFO", logger="csbrain"):
            rows = predict(files, run, tmp_path / "s.csv", CPU, chunk_s=chunk_s)
        assert "prepared whole" not in caplog.text            # it did stream
        assert [(r["recording"], r["window"], r["start_s"]) for r in rows] == \
               [(r["recording"], r["window"], r["start_s"]) for r in whole]
        assert np.abs(_probs(rows) - _probs(whole)).max() < 1e-5
    assert {r["recording"] for r in rows} == {"r0", "r1"}


def test_interrupted_run_leaves_no_output(run, tmp_path, monkeypatch):
    edf = write_edf(tmp_path / "r.edf", seconds=40.0, sfreq=200.0)
    out = tmp_path / "p.csv"
    out.write_text("previous\n")
    real = predict_mod.forward_chunks

    def broken(*args, **kwargs):
        for i, item in enumerate(real(*args, **kwargs)):
            if i == 1:
                raise KeyboardInterrupt
            yield item

    monkeypatch.setattr(predict_mod, "forward_chunks", broken)
    with pytest.raises(KeyboardInterrupt):
        predict([edf], run, out, CPU, chunk_s=5.0)
    with pytest.raises(KeyboardInterrupt):
        embed([edf], run, tmp_path / "e.npy", CPU, chunk_s=5.0)
    assert out.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv", "r.edf"]


def test_streamed_embeddings_equal_whole_file(run, tmp_path):
    files = [write_edf(tmp_path / f"e{i}.edf", seconds=30.0, sfreq=200.0, seed=5 + i)
             for i in range(2)]
    embed(files, run, tmp_path / "w.npz", CPU, stream=False)
    info = embed(files, run, tmp_path / "s.npz", CPU, chunk_s=7.0)
    w, s = np.load(tmp_path / "w.npz"), np.load(tmp_path / "s.npz")
    assert info["shape"] == list(w["embeddings"].shape)
    assert np.abs(w["embeddings"] - s["embeddings"]).max() < 1e-5
    for key in ("recording", "window", "start_s"):
        assert s[key].tolist() == w[key].tolist()


def test_bf16_refused_or_close(run, tmp_path):
    edf = write_edf(tmp_path / "r.edf", seconds=20.0, sfreq=200.0)
    why = bf16_support("cpu")
    if why:
        with pytest.raises(ValueError, match="--bf16: this CPU has no native bfloat16"):
            predict([edf], run, tmp_path / "b.csv", CPU, bf16=True)
        assert not (tmp_path / "b.csv").exists()
    else:
        rows = predict([edf], run, tmp_path / "b.csv", CPU, bf16=True)
        ref = predict([edf], run, tmp_path / "f.csv", CPU)
        assert np.abs(_probs(rows) - _probs(ref)).max() < 0.05
