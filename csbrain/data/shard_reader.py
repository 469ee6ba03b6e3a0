"""Fast reads of runs of windows from the store's sharded Zarr arrays.

The store keeps each recording's ``x`` as a Zarr v3 array with one chunk per window inside
shard files of ``windows_per_shard`` windows (:func:`csbrain.data.store.write_windows`). Zarr
3.1 runs every chunk through its asynchronous codec pipeline; on this project's 2-core machine
that costs about 1 ms per window, twice the decompression itself (``benchmarks/loader_speed.py``
reports both). :class:`ShardReader` reads a run of windows the way the sharding codec lays them
out (Zarr v3 spec, sharding codec: the chunks' encoded bytes, then an index of ``(offset,
nbytes)`` little-endian uint64 pairs and its CRC32C at the end of the file) and decodes each
chunk with numcodecs, the codec library Zarr's own Blosc and Zstd codecs call, straight into
the output array. Zarr offers no batched read without its per-chunk pipeline, hence this.

Only the layout the store writes is read this way (sharding with the index at the end, bytes
codec little-endian, then Blosc, Zstd or nothing); anything else, and every index that is not a
plain integer or contiguous slice, is read by Zarr itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ShardReader"]

_MISSING = np.uint64(2**64 - 1)


def _inner_decoder(codecs: tuple) -> Any | None:
    """``decode(buf, out)`` for the inner codec chain, or None if the chain is not one this
    reader knows (Zarr then reads the array)."""
    from numcodecs import Blosc, Zstd
    from zarr.codecs import BloscCodec, BytesCodec, ZstdCodec

    if not codecs or not isinstance(codecs[0], BytesCodec):
        return None
    if codecs[0].endian is not None and codecs[0].endian.value != "little":
        return None
    rest = codecs[1:]
    if not rest:
        return lambda buf, out: out.view(np.uint8).reshape(-1).__setitem__(
            slice(None), np.frombuffer(buf, dtype=np.uint8))
    if len(rest) == 1 and isinstance(rest[0], BloscCodec):
        codec = Blosc()                   # Blosc frames describe their own typesize/shuffle
        return lambda buf, out: codec.decode(buf, out=out)
    if len(rest) == 1 and isinstance(rest[0], ZstdCodec) and not rest[0].checksum:
        zcodec = Zstd()
        return lambda buf, out: zcodec.decode(buf, out=out)
    return None


class ShardReader:
    """Read-only access to a store's ``x`` array, shape ``(n, C, P, S)``, fast for runs.

    Parameters
    ----------
    path : path-like
        The array folder (``data.zarr/<rec_id>/x``).

    Indexing with an ``int`` gives one window ``(C, P, S)``, with a contiguous slice a run
    ``(k, C, P, S)`` (the store's dtype); any other index is passed to Zarr.
    """

    def __init__(self, path: str | Path) -> None:
        import zarr
        from zarr.codecs import BytesCodec, Crc32cCodec, ShardingCodec
        from zarr.codecs.sharding import ShardingCodecIndexLocation

        self.path = Path(path)
        self.array = zarr.open_array(str(self.path), mode="r")
        self.shape, self.dtype = tuple(self.array.shape), np.dtype(self.array.dtype)
        meta = self.array.metadata
        self._decode = None
        codecs = getattr(meta, "codecs", ())
        if (len(codecs) == 1 and isinstance(codecs[0], ShardingCodec) and len(self.shape) == 4
                and codecs[0].index_location == ShardingCodecIndexLocation.end
                and tuple(codecs[0].chunk_shape) == (1, *self.shape[1:])
                and tuple(self.array.shards or ())[1:] == self.shape[1:]
                and [type(c) for c in codecs[0].index_codecs] == [BytesCodec, Crc32cCodec]):
            self._decode = _inner_decoder(tuple(codecs[0].codecs))
        self.per_shard = int(self.array.shards[0]) if self._decode else 0
        self._meta = meta

    @property
    def fast(self) -> bool:
        """Whether runs are read directly (else through Zarr)."""
        return self._decode is not None

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        n = self.shape[0]
        if self._decode is not None and isinstance(key, (int, np.integer)):
            j = int(key) + (n if key < 0 else 0)
            if not 0 <= j < n:
                raise IndexError(f"window {key} is out of range for {n} windows")
            return self.read(j, j + 1)[0]
        if self._decode is not None and isinstance(key, slice) and key.step in (None, 1):
            a, b, _ = key.indices(n)
            return self.read(a, max(a, b))
        return self.array[key]

    def read(self, a: int, b: int) -> np.ndarray:
        """Windows ``a`` to ``b - 1``, shape ``(b - a, C, P, S)``, the store's dtype."""
        out = np.zeros((b - a, *self.shape[1:]), dtype=self.dtype)
        if self._decode is None:
            out[:] = self.array[a:b]
            return out
        w = self.per_shard
        for s in range(a // w, (b - 1) // w + 1 if b > a else a // w):
            lo, hi = max(a, s * w), min(b, (s + 1) * w)
            self._read_shard(s, lo - s * w, hi - s * w, out[lo - a:hi - a])
        return out

    def _read_shard(self, s: int, i: int, j: int, out: np.ndarray) -> None:
        """Chunks ``i..j-1`` of shard ``s`` into ``out`` (missing chunks keep the fill 0)."""
        key = self._meta.encode_chunk_key((s, 0, 0, 0))
        f = self.path / key
        if not f.is_file():
            return                                       # an absent shard: all fill values
        w = self.per_shard
        with open(f, "rb") as fh:
            fh.seek(-(16 * w + 4), 2)
            index = np.frombuffer(fh.read(16 * w), dtype="<u8").reshape(w, 2)[i:j]
            present = index[:, 0] != _MISSING
            if not present.any():
                return
            start = int(index[present, 0].min())
            end = int((index[present, 0] + index[present, 1]).max())
            fh.seek(start)
            data = memoryview(fh.read(end - start))
        for k in np.flatnonzero(present):
            off, size = int(index[k, 0]) - start, int(index[k, 1])
            self._decode(data[off:off + size], out[k])
