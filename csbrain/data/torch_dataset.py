"""PyTorch access to a window store: a lazily opened :class:`~torch.utils.data.Dataset`.

The dataset reads only the manifest in ``__init__`` (small JSON); each DataLoader worker opens
the Zarr arrays it needs on first use (handles are dropped when the dataset is pickled to a
worker, and reopened after a fork). Windows are single chunks, so shuffled access reads one
window per item. Under DDP, :func:`distributed_sampler` shards the indices per rank.
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
                 return_meta: bool = False) -> None:
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
