"""open_corpus: several sources, mixed channel lists and lengths, grouped by (montage, patches)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from csbrain.engine.corpus import open_corpus
from csbrain.engine.rundata import RunData
from csbrain.engine.sampler import GroupedBatchSampler
from tests.train.helpers import CHANNELS, arrays, prep_config, write_edf


def memory(n, channels, n_patches, seed=0):
    x, y = arrays(n, n_patches=n_patches, seed=seed)
    x = x[:, :len(channels)]
    return RunData.from_arrays(x, np.full(n, -1), channels,
                               recording=[f"r{i // 4}" for i in range(n)])


def test_groups_by_montage_and_length_and_batches_stack():
    a = memory(12, CHANNELS, 2)
    b = memory(10, CHANNELS[:3], 2, seed=1)                  # another montage
    c = memory(8, CHANNELS, 3, seed=2)                       # same montage, longer windows
    d = memory(6, CHANNELS, 2, seed=3)                       # same group as a
    corpus = open_corpus([a, b, c, d])
    assert len(corpus) == 36 and corpus.n_patches == [2, 2, 3]
    assert [m.n_chans for m in corpus.montages] == [4, 3, 4]
    assert corpus.groups.tolist() == [0] * 12 + [1] * 10 + [2] * 8 + [0] * 6
    assert corpus.sources.tolist() == [0] * 12 + [1] * 10 + [2] * 8 + [3] * 6
    x, y, g = corpus.dataset[22]
    assert g == 2 and x.shape == (4, 3, 200)
    torch.testing.assert_close(x, c.dataset[0][0])
    assert len(set(corpus.holdout_groups["recording"])) == 3 + 3 + 2 + 2   # per source
    assert len(set(corpus.holdout_groups["window"])) == 36
    sampler = GroupedBatchSampler(corpus.groups, 4, sources=corpus.sources)
    for xb, _, gb in DataLoader(corpus.dataset, batch_sampler=sampler):
        assert len(set(gb.tolist())) == 1
        m = corpus.montages[int(gb[0])]
        assert xb.shape[1:3] == (m.n_chans, corpus.n_patches[int(gb[0])])


def test_a_store_with_mixed_channel_lists_gives_one_part_per_list(tmp_path):
    from csbrain.data import find_recordings, prepare

    src = tmp_path / "edf"
    src.mkdir()
    for k, chans in enumerate([CHANNELS, CHANNELS, CHANNELS[:3] + ["Cz"]]):
        write_edf(src / f"sub-{k}_task-a.edf", seed=k, channels=chans)
    prepare(find_recordings([src]), tmp_path / "store",
            prep_config(**{"channels.allow_mixed": True, "labels.mode": "none"}))
    corpus = open_corpus([tmp_path / "store"])
    assert sorted(m.n_chans for m in corpus.montages) == [4, 4]
    assert len(set(map(tuple, (m.canonical for m in corpus.montages)))) == 2
    assert np.bincount(corpus.groups).tolist() in ([10, 5], [5, 10])   # 5 windows a recording
    assert corpus.fingerprint["n_windows"] == 15


def test_no_store_is_refused():
    with pytest.raises(ValueError, match="no data store given"):
        open_corpus([])
