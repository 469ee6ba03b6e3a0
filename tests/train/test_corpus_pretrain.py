"""Pretraining on several stores of different montages and lengths: from the CLI, with
per-source held-out losses, and resumed mid-epoch bit-exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from csbrain.engine.checkpoint import load_trainer_state
from csbrain.engine.rundata import RunData
from csbrain.train import pretrain
from tests.train.helpers import CHANNELS, TINY, arrays, prep_config, pretrain_cfg, write_edf


def _log(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _memory(n, channels, n_patches, seed):
    x, _ = arrays(n, n_patches=n_patches, seed=seed)
    return RunData.from_arrays(x[:, :len(channels)], np.full(n, -1), channels,
                               recording=[f"r{i // 2}" for i in range(n)])


def _store(root, channels, seed):
    from csbrain.data import find_recordings, prepare

    src = root / "edf"
    src.mkdir(parents=True)
    for k in range(2):
        write_edf(src / f"sub-{k}_task-a.edf", seed=seed + k, channels=channels)
    prepare(find_recordings([src]), root / "store", prep_config(**{"labels.mode": "none"}))
    return root / "store"


def test_cli_pretrains_on_two_stores_of_different_montages(tmp_path, capsys):
    from csbrain.cli import main
    from csbrain.models import load_model

    a = _store(tmp_path / "a", CHANNELS, 0)
    b = _store(tmp_path / "b", ["Fp2", "C4", "Cz", "P4", "O2", "T8"], 5)
    out = tmp_path / "run"
    sets = [*TINY, "batch_size=4", "epochs=2", "val_fraction=0.5", "val_by=window",
            "source_weighting=balanced", "log_every=1"]
    args = ["pretrain", "--data", str(a), str(b), "--out", str(out)]
    assert main([*args, *[x for kv in sets for x in ("--set", kv)]]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert np.isfinite(metrics["val_loss"])
    val = [r for r in _log(out) if "val_loss" in r]
    assert val and {"val_loss_store_0", "val_loss_store_1"} <= set(val[-1])  # both "store"
    assert np.isfinite(val[-1]["val_feature_spread"])
    model = load_model(out)
    assert list(model.montage.channels) == CHANNELS                    # the first store's
    with torch.no_grad():
        model.backbone.set_montage(["Fp2", "C4", "Cz", "P4", "O2", "T8"])
        assert model(torch.randn(1, 6, 2, 200)).shape == (1, 6, 2, 200)
    run_config = json.loads((out / "run_config.json").read_text())
    assert len(run_config["data"]["sources"]) == 2


def test_mixed_corpus_run_resumes_mid_epoch_bit_exactly(tmp_path):
    from tests.train.test_loop import Kill, _kill_at

    data = [_memory(12, CHANNELS, 2, 0), _memory(8, CHANNELS[:3], 2, 1),
            _memory(8, CHANNELS, 3, 2)]
    cfg = pretrain_cfg("epochs=2", "batch_size=4", "checkpoint_every=3", "log_every=1",
                       "val_fraction=0.25", "val_by=window")
    full = pretrain(cfg, data, tmp_path / "full")
    assert full.state.step == full.state.total_steps > 5
    with pytest.raises(Kill):
        pretrain(cfg, data, tmp_path / "cut", hooks=(_kill_at(5),))     # inside epoch 0
    assert load_trainer_state(tmp_path / "cut")["loop"]["step"] == 3
    pretrain(cfg, data, tmp_path / "cut", resume=True)
    a = load_trainer_state(tmp_path / "full")["model"]
    b = load_trainer_state(tmp_path / "cut")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)

    def no_time(run):
        return [{k: v for k, v in r.items() if k != "time_s"} for r in _log(tmp_path / run)]

    assert no_time("full") == no_time("cut")
    assert {"val_loss_mem_0", "val_loss_mem_1", "val_loss_mem_2"} <= set(no_time("full")[-1])
