"""The training loader: batched reads equal item reads, block ids follow the store's shards, and
the block-shuffled DataLoader is the same with and without workers, shards disjointly and
resumes exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import Subset

from csbrain.data.prepconfig import PrepConfig, StoreConfig
from csbrain.data.store import store_from_arrays
from csbrain.data.torch_dataset import WindowDataset
from csbrain.engine.corpus import open_corpus
from csbrain.engine.loader import block_ids, train_loader
from csbrain.engine.rundata import RunData

CH = ["Fp1", "Fp2", "C3", "C4", "O1", "O2"]
SIZES = {"a": 37, "b": 5, "c": 22}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    rng = np.random.default_rng(0)
    windows = {k: rng.normal(size=(n, len(CH), 2, 200)).astype(np.float32)
               for k, n in SIZES.items()}
    path = tmp_path_factory.mktemp("loader") / "store"
    cfg = PrepConfig(store=StoreConfig(windows_per_shard=8))
    store_from_arrays(path, windows, CH, config=cfg)
    return path, np.concatenate(list(windows.values()))


def test_batched_reads_equal_item_reads(store, tmp_path):
    path, x = store
    ds = WindowDataset(path, return_meta=True)
    idx = [3, 40, 2, 2, 63, -1, 37, 38, 39, 10]
    many = ds.__getitems__(idx)
    for i, (a, b) in zip(idx, zip(many, (ds[i] for i in idx))):
        assert torch.equal(a[0], b[0]) and a[1:] == b[1:]
        np.testing.assert_array_equal(a[0].numpy(), x[i])
    with pytest.raises(IndexError, match="index 64 is out of range for 64 windows"):
        ds.__getitems__([1, 64])
    half = tmp_path / "half"                       # float16 stores give float32 tensors
    store_from_arrays(half, {"r": x[:9]}, CH,
                      config=PrepConfig(store=StoreConfig(dtype="float16")))
    got = WindowDataset(half).__getitems__([8, 0, 1])
    assert got[0][0].dtype == torch.float32
    np.testing.assert_allclose(got[0][0].numpy(), x[8], rtol=1e-3, atol=1e-3)


def test_block_ids_follow_recordings_and_shards(store):
    path, _ = store
    ds = WindowDataset(path)
    shard = block_ids(ds)                          # default: one shard (8 windows)
    assert shard[:9].tolist() == [0] * 8 + [1]
    assert len(np.unique(shard)) == 5 + 1 + 3      # 37 -> 5 shards, 5 -> 1, 22 -> 3
    assert shard[37] != shard[36] and shard[42] != shard[41]   # a block never spans recordings
    four = block_ids(ds, 4)
    assert len(np.unique(four)) == 10 + 2 + 6 and np.all(np.diff(four) >= 0)
    sub = Subset(ds, [0, 1, 20, 40])
    assert block_ids(sub, 4).tolist() == four[[0, 1, 20, 40]].tolist()
    mem = RunData.from_arrays(np.zeros((5, 6, 2, 200), np.float32), np.zeros(5, int), CH)
    assert block_ids(mem.dataset).tolist() == [0, 1, 2, 3, 4]   # memory: a full shuffle
    with pytest.raises(ValueError, match="block_windows=0; expected >= 1"):
        ds.block_ids(0)


def _epoch(loader, sampler, epoch, start=0):
    sampler.set_epoch(epoch)
    sampler.set_start(start)
    return list(loader)


def test_block_loader_workers_ranks_and_resume(store):
    path, x = store
    ds = Subset(WindowDataset(path), list(range(0, 64)))
    loader, sampler = train_loader(ds, 8, block_windows=4, seed=2)
    plain = _epoch(loader, sampler, 1)
    order = [i for b in sampler.global_batches(1) for i in b]
    assert sorted(order) == list(range(64))
    np.testing.assert_array_equal(torch.cat([b[0] for b in plain]).numpy(), x[order])
    workers, s2 = train_loader(ds, 8, block_windows=4, seed=2, num_workers=2)
    for a, b in zip(plain, _epoch(workers, s2, 1), strict=True):   # workers: same batches
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    resumed = _epoch(loader, sampler, 1, start=3)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(plain[3:], resumed, strict=True))
    ranks = [train_loader(ds, 8, block_windows=4, seed=2, num_replicas=2, rank=r)
             for r in range(2)]
    parts = [_epoch(ld, s, 1) for ld, s in ranks]
    assert len(parts[0]) == len(parts[1])
    seen = [i for _, s in ranks for b in s for i in b]
    assert len(seen) == len(set(seen)) >= 64 - 2 * 3


def test_corpus_batches_read_in_blocks(store):
    path, _ = store
    corpus = open_corpus([path, path])              # two sources, one group
    sub = corpus.subset(np.arange(0, len(corpus), 2))
    got = sub.__getitems__([0, 40, 1, 63])
    for a, i in zip(got, [0, 40, 1, 63]):
        b = sub[i]
        assert torch.equal(a[0], b[0]) and a[1:] == b[1:]
    loader, sampler = train_loader(sub, 8, block_windows=8, seed=0)
    batches = _epoch(loader, sampler, 0)
    assert sum(len(b[0]) for b in batches) == len(sub)
    assert all(len(set(b[2].tolist())) == 1 for b in batches)
    with pytest.raises(ValueError, match="shuffle"):
        train_loader(sub, 8, shuffle="chunk")


def test_prefetch_threads_give_the_same_batches(store):
    path, _ = store
    ds = Subset(WindowDataset(path), list(range(64)))
    loader, sampler = train_loader(ds, 8, block_windows=4, seed=5)
    threaded, s2 = train_loader(ds, 8, block_windows=4, seed=5, threads=2, prefetch_factor=2)
    assert type(threaded).__name__ == "PrefetchLoader" and len(threaded) == len(loader) == 8
    for a, b in zip(_epoch(loader, sampler, 3), _epoch(threaded, s2, 3), strict=True):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    s2.set_start(0)
    for k, _ in enumerate(threaded):                # leaving early stops the threads cleanly
        if k == 2:
            break
    with pytest.raises(ValueError, match="threads=2 and num_workers=1 are both set"):
        train_loader(ds, 8, threads=2, num_workers=1)
