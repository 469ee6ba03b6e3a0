"""A pretraining corpus: the windows of one or more stores, of any channel lists and lengths.

Windows are grouped by (montage, number of patches): one group stacks into one batch tensor and
runs on one montage layout (:class:`~csbrain.engine.sampler.GroupedBatchSampler` draws batches
group by group). Every channel of every store is kept: a store whose recordings differ in their
channel lists contributes one part per channel list.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import ConcatDataset, Dataset

from csbrain.engine.rundata import RunData, _store_fingerprint, open_run_data
from csbrain.engine.sampler import GroupedBatchSampler

logger = logging.getLogger(__name__)

__all__ = ["Corpus", "CorpusSubset", "open_corpus", "grouped_batches", "source_labels"]


class _Tagged(Dataset):
    """Items ``(x, y, group)`` of ``dataset``'s ``(x, y)``, ``group`` constant."""

    def __init__(self, dataset: Dataset, group: int) -> None:
        self.dataset, self.group = dataset, group

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        x, y = self.dataset[i][:2]
        return x, y, self.group

    def __getitems__(self, indices: Sequence[int]) -> list:
        many = getattr(self.dataset, "__getitems__", None)
        items = many(list(indices)) if many else [self.dataset[i] for i in indices]
        return [(it[0], it[1], self.group) for it in items]


@dataclass
class Corpus:
    """Windows of several sources, grouped by (montage, patches).

    Attributes
    ----------
    dataset : Dataset
        Items ``(x (C_g, P_g, 200), label, group)``; ``group`` indexes :attr:`montages`.
    montages : list of Montage
        Montage of each group.
    n_patches : list of int
        Patches per window of each group.
    groups, sources : ndarray of int64, shape (n,)
        Group and source (position in :attr:`source_names`) of every window.
    source_names : list of str
    holdout_groups : dict of str to ndarray of str, shape (n,)
        ``recording`` (``source/recording``) and ``window`` keys for hold-out splits.
    prep_configs : list of dict | None
        Preprocessing of each source.
    fingerprint : dict
        ``sources``: the fingerprint of each source; ``n_windows``.
    parts : list of RunData
        One per (source, channel list), in window order.
    """

    dataset: Dataset
    montages: list[Any]
    n_patches: list[int]
    groups: np.ndarray
    sources: np.ndarray
    source_names: list[str]
    holdout_groups: dict[str, np.ndarray]
    prep_configs: list[dict[str, Any] | None] = field(default_factory=list)
    fingerprint: dict[str, Any] = field(default_factory=dict)
    parts: list[RunData] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.groups)

    @property
    def montage(self):
        """The montage of the first group (the one a model is built on)."""
        return self.montages[0]

    def subset(self, indices: Sequence[int]) -> CorpusSubset:
        """The windows ``indices`` (e.g. a training or hold-out split)."""
        return CorpusSubset(self, np.asarray(indices, dtype=np.int64))


class CorpusSubset(Dataset):
    """Windows of a :class:`Corpus` (items ``(x, label, group)``), with their groups, sources
    and the corpus's montages and source labels."""

    def __init__(self, corpus: Corpus, indices: np.ndarray) -> None:
        self.corpus, self.indices = corpus, indices
        self.groups, self.sources = corpus.groups[indices], corpus.sources[indices]
        self.montages, self.source_labels = corpus.montages, source_labels(corpus.source_names)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        return self.corpus.dataset[int(self.indices[i])]

    def __getitems__(self, indices: Sequence[int]) -> list:
        """Items of ``indices`` in order; the windows of each part are read together (one
        batched read per part, see ``WindowDataset.__getitems__``)."""
        glob = self.indices[np.asarray(indices, dtype=np.int64)]
        concat = self.corpus.dataset
        ends = np.asarray(concat.cumulative_sizes)
        part = np.searchsorted(ends, glob, side="right")
        out: list = [None] * len(glob)
        for p in np.unique(part):
            where = np.flatnonzero(part == p)
            local = glob[where] - (ends[p - 1] if p else 0)
            for k, item in zip(where, concat.datasets[p].__getitems__(local.tolist())):
                out[k] = item
        return out


def source_labels(names: Sequence[str]) -> list[str]:
    """Short, unique labels of sources for metric names: the folder name of each store
    (``mem`` for in-memory data), suffixed by its position where two would clash."""
    short = [Path(n).name if n != "memory" else "mem" for n in names]
    return [f"{s}_{i}" if short.count(s) > 1 else s for i, s in enumerate(short)]


def grouped_batches(dataset: Dataset, batch_size: int):
    """Evaluation batches in index order: ``(x, y, montage, source)`` per batch.

    A :class:`CorpusSubset` gives batches of one group and one source each (``montage`` the
    group's, ``source`` its position in the corpus's sources); any other dataset of ``(x, y)``
    items gives plain batches with ``montage`` and ``source`` None.
    """
    from torch.utils.data import DataLoader, default_collate

    if not isinstance(dataset, CorpusSubset):
        for x, y, *_ in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            yield x, y, None, None
        return
    for idx in GroupedBatchSampler(dataset.groups, batch_size, sources=dataset.sources,
                                   shuffle=False):
        x, y, g = default_collate([dataset[i] for i in idx])
        yield x, y, dataset.montages[int(g[0])], int(dataset.sources[idx[0]])


def _parts(store: str | Path | RunData) -> tuple[list[RunData], dict[str, Any], str]:
    """One :class:`RunData` per channel list of ``store``, its fingerprint and name."""
    if isinstance(store, RunData):
        return [store], store.fingerprint, store.source
    try:
        rd = open_run_data(store)
        return [rd], rd.fingerprint, str(store)
    except ValueError as err:
        if "mixes" not in str(err):
            raise
    from csbrain.data.store import WindowStore
    from csbrain.data.torch_dataset import WindowDataset

    ws = WindowStore(store)
    entries = [e for e in ws.manifest()["recordings"] if e.get("n_windows", 0) > 0]
    by_channels: dict[tuple[str, ...], list[str]] = {}
    for e in entries:
        by_channels.setdefault(tuple(e["channels"]), []).append(e["id"])
    parts = []
    for ids in by_channels.values():
        ds = WindowDataset(ws, recordings=ids)
        n = len(ds)
        rec = np.array([e["id"] for e in ds.entries], dtype=object)[ds.recording_of]
        parts.append(RunData(dataset=ds, montage=ds.montage,
                             n_patches=int(ds.entries[0]["n_patches"]), labels=ds.labels,
                             groups={"recording": rec, "window": np.arange(n).astype(str)},
                             prep_config=ws.config, source=str(store)))
    logger.info("%s: %d channel lists, one part each", store, len(parts))
    return parts, _store_fingerprint(Path(store), ws.manifest()), str(store)


def open_corpus(stores: Sequence[str | Path | RunData]) -> Corpus:
    """Open every store of a pretraining corpus.

    Parameters
    ----------
    stores : sequence of path-like | RunData
        Window stores (labels are ignored), or in-memory windows.

    Returns
    -------
    Corpus
    """
    if isinstance(stores, (str, Path, RunData)):
        stores = [stores]
    if not stores:
        raise ValueError("no data store given; pass at least one (--data STORE [STORE ...])")
    keys: dict[tuple[Any, int], int] = {}
    datasets, groups, sources, names, prep, prints, all_parts = [], [], [], [], [], [], []
    rec_keys, win_keys = [], []
    for s, store in enumerate(stores):
        parts, fingerprint, name = _parts(store)
        names.append(name)
        prints.append(fingerprint)
        prep.append(parts[0].prep_config)
        all_parts += parts
        for rd in parts:
            g = keys.setdefault((rd.montage, rd.n_patches), len(keys))
            n = len(rd)
            datasets.append(_Tagged(rd.dataset, g))
            groups.append(np.full(n, g, dtype=np.int64))
            sources.append(np.full(n, s, dtype=np.int64))
            rec_keys.append(np.array([f"{s}/{r}" for r in rd.groups["recording"]], dtype=object))
            win_keys.append(np.array([f"{s}/{len(win_keys)}/{w}" for w in rd.groups["window"]],
                                     dtype=object))
    montages = [m for m, _ in keys]
    n_patches = [p for _, p in keys]
    groups_all = np.concatenate(groups)
    logger.info("corpus of %d windows from %d source(s) in %d group(s) (montage x length)",
                len(groups_all), len(names), len(keys))
    return Corpus(dataset=ConcatDataset(datasets), montages=montages, n_patches=n_patches,
                  groups=groups_all, sources=np.concatenate(sources), source_names=names,
                  holdout_groups={"recording": np.concatenate(rec_keys),
                                  "window": np.concatenate(win_keys)},
                  prep_configs=prep,
                  fingerprint={"sources": prints, "n_windows": int(len(groups_all))},
                  parts=all_parts)
