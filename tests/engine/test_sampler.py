"""GroupedBatchSampler: one group per batch, deterministic, disjoint equal DDP shards, exact
resume, source weighting."""

from __future__ import annotations

import numpy as np
import pytest

from csbrain._checks import CSBrainError
from csbrain.engine.sampler import GroupedBatchSampler

# three sources: 0 and 1 share group 0 (same montage and length), source 2 is group 1
GROUPS = np.array([0] * 50 + [0] * 30 + [1] * 21)
SOURCES = np.array([0] * 50 + [1] * 30 + [2] * 21)


def epoch(s: GroupedBatchSampler, e: int) -> list[list[int]]:
    s.set_epoch(e)
    s.set_start(0)
    return list(s)


def test_batches_hold_one_group_and_cover_every_window_once():
    s = GroupedBatchSampler(GROUPS, 8, sources=SOURCES, seed=3)
    batches = epoch(s, 0)
    assert all(len(set(GROUPS[b])) == 1 for b in batches)
    flat = np.concatenate(batches)
    assert sorted(flat) == list(range(len(GROUPS)))            # one process: nothing trimmed
    assert len(batches) == len(s) == s.batches_per_epoch
    assert epoch(s, 0) == batches                                # deterministic
    assert epoch(s, 1) != batches                                # a new order each epoch
    assert epoch(GroupedBatchSampler(GROUPS, 8, sources=SOURCES, seed=4), 0) != batches


def test_ranks_get_disjoint_equal_shards_that_make_the_global_batch():
    world = 3
    ranks = [GroupedBatchSampler(GROUPS, 6, sources=SOURCES, num_replicas=world, rank=r, seed=1)
             for r in range(world)]
    per_rank = [epoch(s, 2) for s in ranks]
    assert len({len(p) for p in per_rank}) == 1                  # equal step counts
    glob = GroupedBatchSampler(GROUPS, 6, sources=SOURCES, num_replicas=world, seed=1)
    for step, parts in enumerate(zip(*per_rank)):
        assert len({len(p) for p in parts}) == 1                 # equal per-rank batch sizes
        union = [i for p in parts for i in p]
        assert len(set(union)) == len(union)                     # disjoint
        assert union == glob.global_batches(2)[step].tolist()
        assert len(set(GROUPS[union])) == 1
    seen = [i for p in per_rank for b in p for i in b]
    assert len(seen) == len(set(seen)) and len(seen) >= len(GROUPS) - 2 * (world - 1) * 2


def test_resume_mid_epoch_continues_exactly():
    s = GroupedBatchSampler(GROUPS, 8, sources=SOURCES, weighting="balanced", seed=5)
    full = epoch(s, 4)
    again = GroupedBatchSampler(GROUPS, 8, sources=SOURCES, weighting="balanced", seed=5)
    again.set_epoch(4)
    again.set_start(5)
    assert list(again) == full[5:] and len(again) == len(full) - 5


def test_balanced_draws_sources_equally():
    groups = np.zeros(1000, dtype=int)
    sources = np.array([0] * 900 + [1] * 100)
    s = GroupedBatchSampler(groups, 10, sources=sources, weighting="balanced", seed=0)
    counts = np.bincount([sources[b[0]] for e in range(5) for b in epoch(s, e)], minlength=2)
    assert counts.sum() == 5 * 100 and abs(counts[0] - counts[1]) < 0.2 * counts.sum()
    p = GroupedBatchSampler(groups, 10, sources=sources, seed=0)
    prop = np.bincount([sources[b[0]] for b in epoch(p, 0)], minlength=2)
    assert prop.tolist() == [90, 10]


def test_unshuffled_is_index_order():
    s = GroupedBatchSampler(GROUPS, 8, shuffle=False)
    assert np.concatenate(epoch(s, 7)).tolist() == list(range(len(GROUPS)))


@pytest.mark.parametrize("kwargs, message", [
    (dict(batch_size=7, num_replicas=2), "batch_size=7 is not a multiple of the world size 2"),
    (dict(batch_size=8, weighting="equal"), "weighting"),
    (dict(batch_size=8, rank=2, num_replicas=2), "rank=2 must be below num_replicas=2"),
    (dict(batch_size=8, sources=[0, 1]), "sources has shape"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(CSBrainError if "weighting" in kwargs else ValueError, match=message):
        GroupedBatchSampler(GROUPS, **kwargs)


# ----------------------------------------------------------------- block shuffle
# blocks of 4 consecutive windows (the last block of each source shorter)
BLOCKS = np.concatenate([np.arange(50) // 4, 100 + np.arange(30) // 4, 200 + np.arange(21) // 4])


def block_sampler(**kw) -> GroupedBatchSampler:
    return GroupedBatchSampler(GROUPS, kw.pop("batch_size", 8), sources=SOURCES, blocks=BLOCKS,
                               **kw)


def test_block_shuffle_reads_few_blocks_per_batch_and_covers_every_window():
    s = block_sampler(seed=3)
    batches = epoch(s, 0)
    assert all(len(set(GROUPS[b])) == 1 for b in batches)
    assert sorted(np.concatenate(batches)) == list(range(len(GROUPS)))
    # a batch of 8 spans a few blocks of 4 (more only where short tail blocks meet), against
    # nearly 8 for a window shuffle
    assert max(len(set(BLOCKS[b])) for b in batches) <= 4
    assert np.mean([len(set(BLOCKS[b])) for b in batches]) < 3.5
    full = epoch(GroupedBatchSampler(GROUPS, 8, sources=SOURCES, seed=3), 0)
    assert np.mean([len(set(BLOCKS[b])) for b in full]) > 5
    # windows inside a batch are mixed: not in storage order
    assert any(list(b) != sorted(b) for b in batches)
    assert epoch(s, 0) == batches and epoch(s, 1) != batches     # deterministic, new each epoch
    assert epoch(block_sampler(seed=4), 0) != batches
    # every block is visited in one piece or two (cut by a batch boundary), never scattered
    pos = {i: k for k, b in enumerate(batches) for i in b}
    for blk in np.unique(BLOCKS):
        ks = sorted({pos[i] for i in np.flatnonzero(BLOCKS == blk)})
        assert len(ks) <= 2


def test_block_shuffle_ranks_disjoint_equal_and_resume_exactly():
    world = 2
    ranks = [block_sampler(batch_size=8, num_replicas=world, rank=r, seed=1) for r in range(world)]
    per_rank = [epoch(s, 2) for s in ranks]
    assert len({len(p) for p in per_rank}) == 1
    glob = block_sampler(batch_size=8, num_replicas=world, seed=1)
    for step, parts in enumerate(zip(*per_rank)):
        assert len(parts[0]) == len(parts[1])
        union = [i for p in parts for i in p]
        assert len(set(union)) == len(union)
        assert union == glob.global_batches(2)[step].tolist()
    s = block_sampler(weighting="balanced", seed=5)
    full = epoch(s, 4)
    again = block_sampler(weighting="balanced", seed=5)
    again.set_epoch(4)
    again.set_start(3)
    assert list(again) == full[3:] and len(again) == len(full) - 3


def test_single_window_blocks_are_a_full_shuffle():
    s = GroupedBatchSampler(GROUPS, 8, sources=SOURCES, blocks=np.arange(len(GROUPS)), seed=0)
    batches = epoch(s, 0)
    assert sorted(np.concatenate(batches)) == list(range(len(GROUPS)))
    assert np.mean([len(set(BLOCKS[b])) for b in batches]) > 5
    with pytest.raises(ValueError, match=r"blocks has shape \(3,\); expected \(101,\)"):
        GroupedBatchSampler(GROUPS, 8, blocks=[0, 1, 2])
