"""Batches for heterogeneous corpora: every batch from one group (same montage and length).

A corpus made of several stores holds windows of different channel lists and lengths; a batch
must stack into one ``(B, C, P, 200)`` tensor and run on one montage layout. The
:class:`GroupedBatchSampler` cuts each group's windows into batches and orders the batches of an
epoch, all from the seed and the epoch number, so that

- it is deterministic: the same seed and epoch give the same batches;
- every DDP rank runs the same number of steps on disjoint windows: a global batch of ``m``
  windows (a multiple of the world size) is split into ``world_size`` equal, contiguous parts,
  so the union of the ranks' batches is the batch one process would draw;
- a run resumes mid-epoch exactly: :meth:`set_start` skips the batches already done;
- reads can be local: with ``blocks`` (runs of windows stored contiguously, see
  :func:`csbrain.engine.loader.block_ids`), an epoch is a random order of *blocks* rather than
  of windows, so a batch of ``B`` windows is a few contiguous reads instead of ``B`` random ones
  (a block shuffle, as streaming-dataset libraries do); each rank's part of a batch is then
  shuffled, so consecutive windows still come from random places of the corpus;
- sources are weighted as configured: ``proportional`` (every window once per epoch, sources
  contribute in proportion to their size) or ``balanced`` (each batch's source drawn
  uniformly; a source that runs out is reshuffled and drawn again; the epoch has as many
  batches as the proportional one).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from csbrain._checks import check_int, check_option

__all__ = ["WEIGHTINGS", "GroupedBatchSampler"]

#: Source weightings of :class:`GroupedBatchSampler`.
WEIGHTINGS = ("proportional", "balanced")


class GroupedBatchSampler:
    """Batches of window indices, each from one group, the same on every rank (a
    ``batch_sampler`` of :class:`torch.utils.data.DataLoader`; no torch import, so configs
    can name :data:`WEIGHTINGS` without loading torch).

    Parameters
    ----------
    groups : array-like of int, shape (n,)
        Group of each window (windows of one group stack into one tensor: same montage and
        number of patches).
    batch_size : int
        Global batch size (all ranks together); a multiple of ``num_replicas``.
    sources : array-like of int, shape (n,) | None
        Source (e.g. store) of each window, for ``weighting``; None: one source.
    weighting : {"proportional", "balanced"}
    num_replicas, rank : int
        World size and this process's rank.
    seed : int
    shuffle : bool
        False: windows in index order, batches group by group (evaluation).
    blocks : array-like of int, shape (n,) | None
        Block of each window (windows of one block are contiguous in storage and in index
        order); None: every window is its own block (a full shuffle of each group).

    Each group's windows are shuffled and cut into global batches of ``batch_size``; a group's
    last, smaller batch is kept, trimmed to a multiple of ``num_replicas`` (the trimmed windows
    differ from epoch to epoch).
    """

    def __init__(self, groups: Sequence[int], batch_size: int, *,
                 sources: Sequence[int] | None = None, weighting: str = "proportional",
                 num_replicas: int = 1, rank: int = 0, seed: int = 0,
                 shuffle: bool = True, blocks: Sequence[int] | None = None) -> None:
        self.groups = np.asarray(groups, dtype=np.int64)
        if self.groups.ndim != 1 or len(self.groups) == 0:
            raise ValueError(f"groups must be a non-empty 1-D array; got shape "
                             f"{self.groups.shape}")
        self.sources = (np.zeros(len(self.groups), dtype=np.int64) if sources is None
                        else np.asarray(sources, dtype=np.int64))
        if self.sources.shape != self.groups.shape:
            raise ValueError(f"sources has shape {self.sources.shape}; expected "
                             f"{self.groups.shape} (one per window)")
        self.num_replicas = check_int("num_replicas", num_replicas, min_value=1)
        self.rank = check_int("rank", rank, min_value=0)
        if self.rank >= self.num_replicas:
            raise ValueError(f"rank={rank} must be below num_replicas={num_replicas}")
        self.batch_size = check_int("batch_size", batch_size, min_value=1)
        if batch_size % num_replicas:
            raise ValueError(f"batch_size={batch_size} is not a multiple of the world size "
                             f"{num_replicas}")
        self.weighting = check_option("weighting", weighting, WEIGHTINGS)
        self.blocks = None if blocks is None else np.asarray(blocks, dtype=np.int64)
        if self.blocks is not None and self.blocks.shape != self.groups.shape:
            raise ValueError(f"blocks has shape {self.blocks.shape}; expected "
                             f"{self.groups.shape} (one per window)")
        self.seed, self.shuffle = int(seed), bool(shuffle)
        self.epoch, self.start = 0, 0
        # (source, group) cells: the unit a batch is drawn from
        self._cells = sorted(set(zip(self.sources.tolist(), self.groups.tolist())))
        self._members = {c: np.flatnonzero((self.sources == c[0]) & (self.groups == c[1]))
                         for c in self._cells}
        self._n_batches = sum(len(self._cut(m)) for m in self._members.values())
        if self._n_batches == 0:
            raise ValueError(f"no group holds {num_replicas} windows (one per rank); "
                             f"group sizes {sorted(len(m) for m in self._members.values())}")

    def set_epoch(self, epoch: int) -> None:
        """Draw the batches of ``epoch`` (call before iterating)."""
        self.epoch = int(epoch)

    def set_start(self, n_batches: int) -> None:
        """Skip the first ``n_batches`` batches of the current epoch (resume mid-epoch)."""
        self.start = int(n_batches)

    def _cut(self, idx: np.ndarray) -> list[np.ndarray]:
        """Global batches of ``idx`` in order; the tail trimmed to a multiple of the world."""
        out = [idx[i:i + self.batch_size] for i in range(0, len(idx), self.batch_size)]
        if out and len(out[-1]) % self.num_replicas:
            out[-1] = out[-1][:len(out[-1]) - len(out[-1]) % self.num_replicas]
        return [b for b in out if len(b)]

    def global_batches(self, epoch: int | None = None) -> list[np.ndarray]:
        """All global batches of ``epoch`` (default: the current one), in training order.

        Returns
        -------
        list of ndarray of int64
            Window indices of each global batch (length a multiple of ``num_replicas``).
        """
        epoch = self.epoch if epoch is None else int(epoch)
        rng = np.random.default_rng([self.seed, epoch])
        if not self.shuffle:
            return [b for c in self._cells for b in self._cut(self._members[c])]
        per_source: dict[int, list[np.ndarray]] = {}
        for c in self._cells:
            per_source.setdefault(c[0], []).extend(self._cut(self._order(self._members[c], rng)))
        if self.weighting == "proportional":
            batches = [b for s in sorted(per_source) for b in per_source[s]]
            out = [batches[i] for i in rng.permutation(len(batches))]
        else:
            out = self._balanced(per_source, rng)
        if self.blocks is not None:                      # mix each rank's part of a batch
            part_rng = np.random.default_rng([self.seed, epoch, 1])
            out = [self._mix_parts(b, part_rng) for b in out]
        return out

    def _order(self, members: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The epoch's order of one cell: a permutation of its windows, or of its blocks
        (each block's windows kept in storage order, so that a batch reads few runs)."""
        if self.blocks is None:
            return rng.permutation(members)
        ids, inverse = np.unique(self.blocks[members], return_inverse=True)
        rank = np.empty(len(ids), dtype=np.int64)
        rank[rng.permutation(len(ids))] = np.arange(len(ids))
        return members[np.lexsort((members, rank[inverse]))]

    def _mix_parts(self, batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``batch`` with each rank's contiguous part shuffled in place (the windows of a
        rank stay that rank's; only their order within the part changes)."""
        part = len(batch) // self.num_replicas
        return np.concatenate([rng.permutation(batch[r * part:(r + 1) * part])
                               for r in range(self.num_replicas)])

    def _balanced(self, per_source: dict[int, list[np.ndarray]], rng: np.random.Generator
                  ) -> list[np.ndarray]:
        names = sorted(per_source)
        queues = {s: [per_source[s][i] for i in rng.permutation(len(per_source[s]))]
                  for s in names}
        pos = dict.fromkeys(names, 0)
        out = []
        for s in rng.choice(len(names), size=self._n_batches):
            s = names[s]
            if pos[s] == len(queues[s]):                   # exhausted: reshuffle this source
                queues[s] = [queues[s][i] for i in rng.permutation(len(queues[s]))]
                pos[s] = 0
            out.append(queues[s][pos[s]])
            pos[s] += 1
        return out

    def __iter__(self) -> Iterator[list[int]]:
        for b in self.global_batches()[self.start:]:
            part = len(b) // self.num_replicas
            yield b[self.rank * part:(self.rank + 1) * part].tolist()

    def __len__(self) -> int:
        """Batches left in the current epoch (the same on every rank)."""
        return max(self._n_batches - self.start, 0)

    @property
    def batches_per_epoch(self) -> int:
        return self._n_batches
