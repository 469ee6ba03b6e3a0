"""The torch Dataset over a store (lazy per worker, DDP sharding) and the LMDB reader."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from csbrain.configio import load_config
from csbrain.data.lmdb_reader import LMDBWindows
from csbrain.data.pipeline import prepare
from csbrain.data.prepconfig import PrepConfig
from csbrain.data.readers import find_recordings
from csbrain.data.torch_dataset import WindowDataset, distributed_sampler


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from tests.data.conftest import make_raw, write

    d = tmp_path_factory.mktemp("edf")
    for i in range(3):
        write(make_raw(seed=i, seconds=30), d / f"rec{i}.edf")
    out = tmp_path_factory.mktemp("st") / "store"
    prepare(find_recordings([d]), out, load_config(PrepConfig, None, ["windows.length_s=5"]))
    return out


def test_items_and_meta(store):
    ds = WindowDataset(store, return_meta=True)
    assert len(ds) == 18
    x, y, meta = ds[7]
    assert x.shape == (19, 5, 200) and x.dtype == torch.float32 and y == -1
    assert meta == {"recording": "rec1", "index": 1, "start": 1000}
    np.testing.assert_array_equal(x.numpy(), ds.store.arrays("rec1")[0][1])
    assert ds[-1][2]["recording"] == "rec2"
    with pytest.raises(IndexError, match="out of range for 18 windows"):
        ds[18]
    assert ds.montage.n_chans == 19 and ds.labels.shape == (18,)
    assert len(WindowDataset(store, where=lambda e: e["id"] != "rec0")) == 12
    with pytest.raises(ValueError, match=r"recordings \['nope'\] are not in store"):
        WindowDataset(store, recordings=["nope"])
    pickle.loads(pickle.dumps(ds))  # handles are dropped when sent to a worker


def test_dataloader_workers_and_ddp_shards(store):
    ds = WindowDataset(store)
    ds[0]  # open handles in the parent: workers must not reuse them
    loader = DataLoader(ds, batch_size=4, shuffle=True, num_workers=2,
                        generator=torch.Generator().manual_seed(0))
    xs = torch.cat([x for x, _ in loader])
    assert xs.shape == (18, 19, 5, 200)
    ref = torch.stack([ds[i][0] for i in range(len(ds))])
    assert torch.equal(xs.sum(0), ref.sum(0)) or torch.allclose(xs.sum(0), ref.sum(0), atol=1e-4)
    shards = [list(distributed_sampler(ds, num_replicas=3, rank=r, seed=1)) for r in range(3)]
    assert sorted(sum(shards, [])) == list(range(18)) and all(len(s) == 6 for s in shards)
    assert list(distributed_sampler(ds, shuffle=False)) == list(range(18))


def _write_lmdb(path, entries: dict, keys):
    import lmdb

    env = lmdb.open(str(path), map_size=1 << 26)
    with env.begin(write=True) as txn:
        for k, v in entries.items():
            txn.put(k.encode(), pickle.dumps(v))
        txn.put(b"__keys__", pickle.dumps(keys))
    env.close()


def test_lmdb_pretraining_and_downstream(tmp_path):
    a = np.random.default_rng(0).standard_normal((19, 3, 200))
    _write_lmdb(tmp_path / "pre", {"w0": a, "w1": a * 2}, ["w0", "w1"])
    ds = LMDBWindows(tmp_path / "pre")
    x, y = ds[1]
    assert len(ds) == 2 and y == -1 and x.dtype == torch.float32
    np.testing.assert_allclose(x.numpy(), a * 2, rtol=1e-6)
    _write_lmdb(tmp_path / "down", {"t0": {"sample": a * 100, "label": 3}},
                {"train": ["t0"], "val": [], "test": []})
    x, y = LMDBWindows(tmp_path / "down", split="train", scale=0.01)[0]
    assert y == 3
    np.testing.assert_allclose(x.numpy(), a, rtol=1e-5)
    with pytest.raises(ValueError, match=r"has splits \['test', 'train', 'val'\]; pass split="):
        LMDBWindows(tmp_path / "down")
    n = len(list(DataLoader(LMDBWindows(tmp_path / "pre"), batch_size=1, num_workers=2)))
    assert n == 2
    _write_lmdb(tmp_path / "nokeys", {"w0": a}, ["w0"])
    import lmdb

    env = lmdb.open(str(tmp_path / "nokeys"))
    with env.begin(write=True) as txn:
        txn.delete(b"__keys__")
    env.close()
    with pytest.raises(ValueError, match="has no '__keys__' entry"):
        LMDBWindows(tmp_path / "nokeys")


class _RunsCode:
    """A pickle that would create a file when loaded by plain ``pickle``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_lmdb_values_cannot_run_code(tmp_path, protocol):
    a = np.random.default_rng(0).standard_normal((2, 1, 200)).astype(np.float32)
    marker = tmp_path / "pwned"
    import lmdb

    env = lmdb.open(str(tmp_path / "evil"), map_size=1 << 26)
    with env.begin(write=True) as txn:
        txn.put(b"good", pickle.dumps({"sample": a, "label": np.int64(1)}, protocol=protocol))
        bad = pickle.dumps({"sample": _RunsCode(marker), "label": 0}, protocol=protocol)
        txn.put(b"bad", bad)
        txn.put(b"__keys__", pickle.dumps(["good", "bad"], protocol=protocol))
    env.close()
    ds = LMDBWindows(tmp_path / "evil")
    x, y = ds[0]  # arrays, numpy scalars, dicts, lists and strings load
    assert y == 1 and torch.equal(x, torch.from_numpy(a))
    with pytest.raises(ValueError, match=r"cannot read the value of key 'bad' in LMDB .*"
                                         r"io.open is not allowed"):
        ds[1]
    assert not marker.exists()
    pickle.loads(bad)  # the value the LMDB holds: plain pickle would have run it
    assert marker.exists()
