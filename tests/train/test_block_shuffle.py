"""Training from a window store with the block-shuffled loader (``shuffle=block``): it trains,
and a killed run resumes bit-exactly."""

from __future__ import annotations

import pytest
import torch

from csbrain.data.prepconfig import PrepConfig, StoreConfig
from csbrain.data.store import store_from_arrays
from csbrain.engine.checkpoint import load_trainer_state
from csbrain.train import pretrain
from tests.train.helpers import CHANNELS, arrays, pretrain_cfg
from tests.train.test_loop import Kill, _kill_at, _log


def test_block_shuffle_pretraining_resumes_exactly(tmp_path):
    x, _ = arrays(40)
    store = tmp_path / "store"
    store_from_arrays(store, {"r0": x[:25], "r1": x[25:]}, CHANNELS,
                      config=PrepConfig(store=StoreConfig(windows_per_shard=8)))
    cfg = pretrain_cfg("epochs=2", "checkpoint_every=3", "log_every=1", "shuffle=block",
                       "shuffle_block=4", "val_fraction=0")
    full = pretrain(cfg, store, tmp_path / "full")
    assert full.state.step == 10                                  # 40 windows, batches of 8
    with pytest.raises(Kill):
        pretrain(cfg, store, tmp_path / "cut", hooks=(_kill_at(7),))
    resumed = pretrain(cfg, store, tmp_path / "cut", resume=True)
    assert resumed.state.step == full.state.step
    a = load_trainer_state(tmp_path / "full")["model"]
    b = load_trainer_state(tmp_path / "cut")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    losses = [r["loss"] for r in _log(tmp_path / "full") if "loss" in r]
    assert losses == [r["loss"] for r in _log(tmp_path / "cut") if "loss" in r]
    threaded = pretrain(pretrain_cfg("epochs=2", "checkpoint_every=3", "log_every=1",
                                     "shuffle=block", "shuffle_block=4", "val_fraction=0",
                                     "loader_threads=2"), store, tmp_path / "threads")
    c = load_trainer_state(threaded.run_dir)["model"]
    assert all(torch.equal(a[k], c[k]) for k in a)               # threads: the same batches
    with pytest.raises(ValueError, match="shuffle"):
        pretrain_cfg("shuffle=chunks")
    with pytest.raises(ValueError, match="loader_threads=2 and num_workers=1 are both set"):
        pretrain_cfg("loader_threads=2", "num_workers=1")
