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

logger = logging.getLogger(__name__)

__all__ = ["Corpus", "open_corpus"]


class _Tagged(Dataset):
    """Items ``(x, y, group)`` of ``dataset``'s ``(x, y)``, ``group`` constant."""

    def __init__(self, dataset: Dataset, group: int) -> None:
        self.dataset, self.group = dataset, group

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        x, y = self.dataset[i][:2]
        return x, y, self.group


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

    def __len__(self) -> int:
        return len(self.groups)

    @property
    def montage(self):
        """The montage of the first group (the one a model is built on)."""
        return self.montages[0]


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
    datasets, groups, sources, names, prep, prints = [], [], [], [], [], []
    rec_keys, win_keys = [], []
    for s, store in enumerate(stores):
        parts, fingerprint, name = _parts(store)
        names.append(name)
        prints.append(fingerprint)
        prep.append(parts[0].prep_config)
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
                  fingerprint={"sources": prints, "n_windows": int(len(groups_all))})
