"""ShardReader reads exactly what Zarr reads, for every store compression and dtype, across
shard boundaries, partial last shards and chunks never written (all zeros)."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from csbrain.data.prepconfig import StoreConfig
from csbrain.data.shard_reader import ShardReader
from csbrain.data.store import write_windows


@pytest.mark.parametrize("compression, dtype", [("blosc-zstd", "float32"), ("zstd", "float32"),
                                                ("blosc-lz4", "float16"), ("none", "float32")])
def test_reads_equal_zarr(tmp_path, compression, dtype):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(21, 3, 2, 200)).astype(np.float32)
    x[9] = 0.0                                    # an all-fill chunk: zarr does not write it
    cfg = StoreConfig(dtype=dtype, compression=compression, windows_per_shard=8)
    write_windows(tmp_path / "g", x, np.zeros(21), np.arange(21), {}, cfg)
    r = ShardReader(tmp_path / "g" / "x")
    z = zarr.open_array(str(tmp_path / "g" / "x"), mode="r")
    assert r.fast and len(r) == 21
    for key in (0, 9, 20, -1, slice(0, 21), slice(5, 19), slice(7, 9), slice(16, 30),
                slice(4, 4), [3, 1]):
        got, want = r[key], z[key]
        assert got.dtype == want.dtype == np.dtype(dtype) and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(r[9], 0)
    with pytest.raises(IndexError, match="window 21 is out of range for 21 windows"):
        r[21]


def test_other_layouts_are_read_by_zarr(tmp_path):
    x = np.arange(2 * 3 * 2 * 200, dtype=np.float32).reshape(2, 3, 2, 200)
    z = zarr.open_array(str(tmp_path / "plain"), mode="w", shape=x.shape, dtype="float32",
                        chunks=(1, 3, 2, 200))
    z[:] = x
    r = ShardReader(tmp_path / "plain")
    assert not r.fast
    np.testing.assert_array_equal(r[0:2], x)
    np.testing.assert_array_equal(r[1], x[1])
