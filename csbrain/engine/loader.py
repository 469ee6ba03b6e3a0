"""The training data loader: a block shuffle over the store's layout, batched reads, workers.

Reading a window store one random window at a time costs a Zarr read call per window, about as
much as decoding the window itself. The training loader instead shuffles *blocks*: runs of
``block_windows`` consecutive windows of one recording, aligned to the store's shard files
(:meth:`~csbrain.data.torch_dataset.WindowDataset.block_ids`). An epoch visits the blocks in a
random order (:class:`~csbrain.engine.sampler.GroupedBatchSampler` with ``blocks``), so a
batch of ``B`` windows is ``B / block_windows`` random runs, each read with one call by the
dataset's batched ``__getitems__``, and the windows of each rank's part of a batch are then
shuffled. The order depends only on the seed and the epoch (not on the number of workers), every
DDP rank gets disjoint windows and the same number of steps, and a run resumes mid-epoch exactly
(``set_start``).

Worker processes open the store lazily (the dataset drops its handles when pickled and after a
fork), batches are prefetched (``prefetch_factor`` per worker) and pinned for CUDA devices.
Each batch a worker process makes crosses into the training process through new shared memory,
which on a small CPU costs more than reading it (``benchmarks/loader_speed.py``);
:class:`PrefetchLoader` instead reads batches with threads of the training process (decoding
and file reads release the GIL), several batches ahead, in the sampler's order.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset, default_collate

from csbrain._checks import check_int, check_option
from csbrain.engine.corpus import CorpusSubset, _Tagged
from csbrain.engine.sampler import GroupedBatchSampler

logger = logging.getLogger(__name__)

__all__ = ["SHUFFLES", "block_ids", "train_loader", "PrefetchLoader"]

#: ``window``: every window drawn independently (a full shuffle); ``block``: the block shuffle.
SHUFFLES = ("window", "block")


def block_ids(dataset: Dataset, block_windows: int | None = None) -> np.ndarray:
    """Block of every window of ``dataset``, shape (n,), int64 (equal ids: contiguous in storage).

    Understands window stores (:class:`~csbrain.data.torch_dataset.WindowDataset`), their
    :class:`~torch.utils.data.Subset` s, concatenations and corpora; any other dataset (e.g.
    windows in memory, where order costs nothing) gets one block per window.
    """
    base = getattr(dataset, "block_ids", None)
    if callable(base):
        return base(block_windows)
    if isinstance(dataset, CorpusSubset):
        return block_ids(dataset.corpus.dataset, block_windows)[dataset.indices]
    if isinstance(dataset, Subset):
        ids = block_ids(dataset.dataset, block_windows)
        return ids[np.asarray(dataset.indices, dtype=np.int64)]
    if isinstance(dataset, _Tagged):
        return block_ids(dataset.dataset, block_windows)
    if isinstance(dataset, ConcatDataset):
        parts, offset = [], 0
        for d in dataset.datasets:
            ids = block_ids(d, block_windows)
            parts.append(ids + offset)
            offset += int(ids.max()) + 1 if len(ids) else 0
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return np.arange(len(dataset), dtype=np.int64)


def _pin(batch: Any) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.pin_memory()
    if isinstance(batch, (list, tuple)):
        return type(batch)(_pin(b) for b in batch)
    return batch


class PrefetchLoader:
    """Batches of ``batch_sampler`` read by ``threads`` threads of this process, up to
    ``prefetch`` batches ahead, yielded in the sampler's order (the same batches as a
    :class:`~torch.utils.data.DataLoader` with this batch sampler).

    Parameters
    ----------
    dataset : Dataset
        Read with ``__getitems__`` when it has one (a batch at a time), else item by item.
    batch_sampler : iterable of list of int
    threads, prefetch : int
    pin_memory : bool
        Pin each batch's tensors (for an asynchronous copy to a CUDA device).
    """

    def __init__(self, dataset: Dataset, batch_sampler: Any, *, threads: int = 2,
                 prefetch: int = 4, pin_memory: bool = False) -> None:
        self.dataset, self.batch_sampler = dataset, batch_sampler
        self.threads = check_int("threads", threads, min_value=1)
        self.prefetch = check_int("prefetch", prefetch, min_value=1)
        self.pin_memory = bool(pin_memory)

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def _fetch(self, indices: list[int]) -> Any:
        many = getattr(self.dataset, "__getitems__", None)
        items = many(indices) if many else [self.dataset[i] for i in indices]
        batch = default_collate(items)
        return _pin(batch) if self.pin_memory else batch

    def __iter__(self) -> Iterator[Any]:
        ex = ThreadPoolExecutor(self.threads, thread_name_prefix="csbrain-loader")
        try:
            order = iter(self.batch_sampler)
            pending = deque(ex.submit(self._fetch, idx) for _, idx in
                            zip(range(max(self.prefetch, self.threads)), order))
            while pending:
                done = pending.popleft()
                nxt = next(order, None)
                if nxt is not None:
                    pending.append(ex.submit(self._fetch, nxt))
                yield done.result()
        finally:
            ex.shutdown(wait=True, cancel_futures=True)


def train_loader(dataset: Dataset, batch_size: int, *, shuffle: str = "block",
                 block_windows: int | None = 16, num_workers: int = 0, threads: int = 0,
                 seed: int = 0,
                 num_replicas: int = 1, rank: int = 0, weighting: str = "proportional",
                 pin_memory: bool = False, prefetch_factor: int = 2,
                 generator: torch.Generator | None = None
                 ) -> tuple[DataLoader | PrefetchLoader, GroupedBatchSampler]:
    """A DataLoader of shuffled training batches and its (resumable) batch sampler.

    Parameters
    ----------
    dataset : Dataset
        Items ``(x (C, P, 200), label)``, or a :class:`~csbrain.engine.corpus.CorpusSubset`
        (items ``(x, label, group)``, batches of one group each).
    batch_size : int
        Global batch size (all ranks); each rank's batches hold ``batch_size / num_replicas``.
    shuffle : {"block", "window"}
        See :data:`SHUFFLES`.
    block_windows : int | None
        Windows per block (a divisor of the store's ``windows_per_shard`` keeps a block in one
        file); None: one shard.
    num_workers, prefetch_factor, pin_memory, generator
        As for :class:`~torch.utils.data.DataLoader` (``prefetch_factor`` only with workers).
    threads : int
        > 0: read with a :class:`PrefetchLoader` of this many threads (``prefetch_factor *
        threads`` batches ahead) instead of worker processes (``num_workers`` must be 0).
    seed, num_replicas, rank, weighting
        As for :class:`~csbrain.engine.sampler.GroupedBatchSampler`.

    Returns
    -------
    loader : DataLoader | PrefetchLoader
        Batches ``(x (b, C, P, 200), y (b,)[, group (b,)])``.
    sampler : GroupedBatchSampler
        Call ``set_epoch`` / ``set_start`` before iterating.
    """
    check_option("shuffle", shuffle, SHUFFLES)
    check_int("num_workers", num_workers, min_value=0)
    check_int("threads", threads, min_value=0)
    if threads and num_workers:
        raise ValueError(f"threads={threads} and num_workers={num_workers} are both set; "
                         f"read with threads or with worker processes, not both")
    if block_windows is not None:
        check_int("block_windows", block_windows, min_value=1)
    if isinstance(dataset, CorpusSubset):
        groups, sources = dataset.groups, dataset.sources
    else:
        groups, sources = np.zeros(len(dataset), dtype=np.int64), None
    blocks = block_ids(dataset, block_windows) if shuffle == "block" else None
    sampler = GroupedBatchSampler(groups, batch_size, sources=sources, weighting=weighting,
                                  num_replicas=num_replicas, rank=rank, seed=seed,
                                  blocks=blocks)
    if blocks is not None:
        logger.info("block shuffle: %d windows in %d blocks", len(blocks),
                    len(np.unique(blocks)))
    if threads:
        return PrefetchLoader(dataset, sampler, threads=threads,
                              prefetch=prefetch_factor * threads, pin_memory=pin_memory), sampler
    extra: dict[str, Any] = {"prefetch_factor": prefetch_factor} if num_workers else {}
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers,
                        pin_memory=pin_memory, generator=generator, **extra)
    return loader, sampler
