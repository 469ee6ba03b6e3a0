"""PyTorch access to a window store: a lazily opened :class:`~torch.utils.data.Dataset`.

The dataset reads only the manifest in ``__init__`` (small JSON); each DataLoader worker opens
the Zarr arrays it needs on first use (handles are dropped when the dataset is pickled to a
worker, and reopened after a fork). Windows are single chunks, so shuffled access reads one
window per item; a DataLoader asking for a whole batch (``__getitems__``) gets each run of
consecutive windows of a recording in one read (see :meth:`WindowDataset.block_ids` and the
block shuffle of :class:`~csbrain.engine.sampler.GroupedBatchSampler`). Under DDP,
:func:`distributed_sampler` shards the indices per rank.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torch.utils.data.distributed import DistributedSampler

from csbrain._checks import more
from csbrain.data.store import WindowStore

__all__ = ["WindowDataset", "distributed_sampler"]


class WindowDataset(Dataset):
    """Windows of a store as ``(x, label)`` pairs.

    Parameters
    ----------
    store : path-like | WindowStore
    recordings : sequence of str | None
        Restrict to these recording ids.
    where : callable | None
        Keep recordings whose manifest entry satisfies ``where(entry)`` (e.g.
        ``lambda e: e["split"] == "train"`` or ``e["subject"] in train_subjects``).
    transform : callable | None
        Applied to ``x`` (a tensor) per item.
    return_meta : bool
        Also return ``{"recording", "index", "start"}``.
    direct_reads : bool
        Read windows with :class:`~csbrain.data.shard_reader.ShardReader` (the store's shard
        layout decoded directly, about 2x Zarr's rate; same values); False: through Zarr.

    Notes
    -----
    Items are ``x``: float32 tensor ``(C, P, 200)`` in model units and ``label``: int (-1 for
    unlabelled). A store made with ``channels.allow_mixed=true`` can hold recordings with
    different channel lists; batch those with ``batch_size=1`` or a sampler grouping
    :attr:`recording_of` by :meth:`channels_of`.
    """

    def __init__(self, store: str | Path | WindowStore, *, recordings: Sequence[str] | None = None,
                 where: Callable[[dict[str, Any]], bool] | None = None,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 return_meta: bool = False, direct_reads: bool = True) -> None:
        self.store = store if isinstance(store, WindowStore) else WindowStore(store)
        manifest = self.store.manifest()
        entries = manifest["recordings"]
        if recordings is not None:
            known = {e["id"] for e in entries}
            unknown = sorted(set(recordings) - known)
            if unknown:
                raise ValueError(f"recordings [{more(map(repr, unknown), 5)}] are not in store "
                                 f"{str(self.store.path)!r}")
            wanted = set(recordings)
            entries = [e for e in entries if e["id"] in wanted]
        if where is not None:
            entries = [e for e in entries if where(e)]
        self.entries: list[dict[str, Any]] = [e for e in entries if e.get("n_windows", 0) > 0]
        counts = np.array([e["n_windows"] for e in self.entries], dtype=np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(counts)])
        self.transform = transform
        self.return_meta = return_meta
        self.direct_reads = bool(direct_reads)
        self._open: dict[int, tuple[Any, np.ndarray, np.ndarray]] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_open"] = {}
        return state

    def _locate(self, index: int) -> tuple[int, int]:
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} is out of range for {n} windows")
        r = int(np.searchsorted(self._offsets, index, side="right") - 1)
        return r, int(index - self._offsets[r])

    def _arrays(self, r: int):
        if os.getpid() != self._pid:  # forked into a worker: do not share handles
            self._open, self._pid = {}, os.getpid()
        if r not in self._open:
            x, y, start = self.store.arrays(self.entries[r]["id"])
            if self.direct_reads:
                from csbrain.data.shard_reader import ShardReader

                x = ShardReader(self.store.data_path / self.entries[r]["id"] / "x")
            self._open[r] = (x, np.asarray(y[:]), np.asarray(start[:]))
        return self._open[r]

    def __getitem__(self, index: int):
        r, j = self._locate(int(index))
        x_arr, y, start = self._arrays(r)
        x = torch.from_numpy(np.asarray(x_arr[j], dtype=np.float32))
        if self.transform is not None:
            x = self.transform(x)
        if self.return_meta:
            return x, int(y[j]), {"recording": self.entries[r]["id"], "index": j,
                                  "start": int(start[j])}
        return x, int(y[j])

    def __getitems__(self, indices: Sequence[int]) -> list:
        """The items of ``indices`` (what :meth:`__getitem__` gives, in the same order), each
        run of consecutive windows of one recording read by one array slice.

        Zarr costs about as much per read call as per decoded window, so a batch whose windows
        come in a few contiguous runs (a block shuffle) is read several times faster than one
        read per window.
        """
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self)
        idx = np.where(idx < 0, idx + n, idx)
        bad = idx[(idx < 0) | (idx >= n)]
        if len(bad):
            raise IndexError(f"index {int(bad[0])} is out of range for {n} windows")
        rec = np.searchsorted(self._offsets, idx, side="right") - 1
        local = idx - self._offsets[rec]
        order = np.lexsort((local, rec))                 # storage order
        xs: list[Any] = [None] * len(idx)
        s_rec, s_loc = rec[order], local[order]
        cut = np.flatnonzero((np.diff(s_rec) != 0) | (np.diff(s_loc) > 1)) + 1
        for run in np.split(np.arange(len(idx)), cut):
            r, a, b = int(s_rec[run[0]]), int(s_loc[run[0]]), int(s_loc[run[-1]]) + 1
            block = torch.from_numpy(np.asarray(self._arrays(r)[0][a:b], dtype=np.float32))
            for k in run:                                # duplicates read once, shared
                xs[order[k]] = block[s_loc[k] - a]
        items = []
        for i, x in enumerate(xs):
            r, j = int(rec[i]), int(local[i])
            if self.transform is not None:
                x = self.transform(x)
            y = int(self._arrays(r)[1][j])
            items.append((x, y, {"recording": self.entries[r]["id"], "index": j,
                                 "start": int(self._arrays(r)[2][j])})
                         if self.return_meta else (x, y))
        return items

    def block_ids(self, block_windows: int | None = None) -> np.ndarray:
        """Block of every window: runs of ``block_windows`` consecutive windows of one
        recording, aligned to its shards (default: one shard, the store's
        ``windows_per_shard``), shape (n,), int64 (increasing with the index).

        A shard is one file, so reading any run inside it costs one open; a block that
        divides the shard size never straddles two files.
        """
        if block_windows is None:
            block_windows = int(self.store.config.get("store", {}).get("windows_per_shard", 64))
        if block_windows < 1:
            raise ValueError(f"block_windows={block_windows}; expected >= 1")
        local = np.arange(len(self)) - np.repeat(self._offsets[:-1], np.diff(self._offsets))
        key = self.recording_of * (len(self) + 1) + local // block_windows
        return np.unique(key, return_inverse=True)[1].astype(np.int64)

    @property
    def recording_of(self) -> np.ndarray:
        """Position in :attr:`entries` of the recording of every window, shape (n,)."""
        return np.repeat(np.arange(len(self.entries)), np.diff(self._offsets))

    @property
    def labels(self) -> np.ndarray:
        """Label of every window, shape (n,) (reads each recording's ``y``)."""
        if not self.entries:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([self._arrays(r)[1] for r in range(len(self.entries))])

    @property
    def starts(self) -> np.ndarray:
        """Start of every window (sample at 200 Hz, or trial index), shape (n,), int64."""
        if not self.entries:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([self._arrays(r)[2] for r in range(len(self.entries))]
                              ).astype(np.int64)

    def channels_of(self, r: int) -> list[str]:
        """Canonical channel names of recording ``r`` (position in :attr:`entries`)."""
        return list(self.entries[r]["channels"])

    @property
    def montage(self):
        """The :class:`~csbrain.montage.Montage` shared by all windows (None if mixed/empty)."""
        from csbrain.montage import Montage

        dicts = {tuple(e["channels"]) for e in self.entries}
        if len(dicts) != 1:
            return None
        return Montage.from_dict(self.entries[0]["montage"])


def distributed_sampler(dataset: Dataset, *, shuffle: bool = True, seed: int = 0,
                        drop_last: bool = False, num_replicas: int | None = None,
                        rank: int | None = None) -> DistributedSampler:
    """A :class:`~torch.utils.data.distributed.DistributedSampler` for this rank.

    ``num_replicas``/``rank`` default to the initialised process group, else to the
    ``WORLD_SIZE``/``RANK`` environment variables, else to a single process. Call
    ``sampler.set_epoch(epoch)`` every epoch for a new shuffle.
    """
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        world, this = dist.get_world_size(), dist.get_rank()
    else:
        world, this = int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("RANK", 0))
    num_replicas = world if num_replicas is None else num_replicas
    rank = this if rank is None else rank
    return DistributedSampler(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle,
                              seed=seed, drop_last=drop_last)
