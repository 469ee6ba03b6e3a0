"""Sequences of consecutive windows: cut per recording and at gaps, trailing windows dropped,
labels of the run data (not the store's), items read from a store."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from csbrain.engine.rundata import RunData, labelled_indices, open_run_data
from csbrain.engine.sequences import (
    as_sequences,
    prediction_pieces,
    sequence_forward,
    sequence_index,
)
from tests.train.helpers import CHANNELS, arrays, make_store


def test_index_cuts_per_recording_and_at_gaps_and_drops_tails():
    rec = np.array(["a"] * 7 + ["b"] * 5)
    index, dropped = sequence_index(rec, None, 3)
    assert index.tolist() == [[0, 1, 2], [3, 4, 5], [7, 8, 9]] and dropped == 3
    # a gap in "a" (window 3 rejected: starts jump by two steps) restarts the sequences
    starts = np.array([0, 400, 800, 2000, 2400, 2800, 3200, 0, 400, 800, 1200, 1600])
    index, dropped = sequence_index(rec, starts, 3)
    assert index.tolist() == [[0, 1, 2], [3, 4, 5], [7, 8, 9]] and dropped == 3
    index, _ = sequence_index(rec, starts, 2)
    assert index.tolist() == [[0, 1], [3, 4], [5, 6], [7, 8], [9, 10]]
    # trial stores number their windows: a step of one is consecutive
    index, _ = sequence_index(np.array(["t"] * 4), np.array([0, 1, 2, 3]), 2)
    assert index.tolist() == [[0, 1], [2, 3]]
    assert sequence_index(rec, None, 8)[0].shape == (0, 8)


def test_as_sequences_in_memory_uses_the_run_data_labels():
    x, y = arrays(10)
    rec = np.array(["r0"] * 6 + ["r1"] * 4)
    rd = RunData.from_arrays(x, y, CHANNELS, recording=rec, subject=rec)
    labels = rd.labels.copy()
    labels[1] = -1                                    # e.g. a benchmark variant's dropped window
    seq = as_sequences(dataclasses.replace(rd, labels=labels), 3)
    assert seq.labels.tolist() == [[0, -1, 0], [1, 0, 1], [0, 1, 0]]
    assert seq.groups["recording"].tolist() == ["r0", "r0", "r1"]
    assert seq.fingerprint["sequence_length"] == 3 and len(seq) == 3
    xs, ys = seq.dataset[2]
    assert xs.shape == (3, 4, 2, 200) and ys.tolist() == [0, 1, 0]
    torch.testing.assert_close(xs, torch.from_numpy(x[6:9]))
    assert labelled_indices(np.array([[-1, -1], [0, -1]])).tolist() == [1]
    with pytest.raises(ValueError, match="sequence_length=7: no recording of 'memory' has 7"):
        as_sequences(rd, 7)


def test_as_sequences_of_a_store_reads_each_sequence(tmp_path):
    store = make_store(tmp_path)                          # 4 recordings x 5 windows of 2 s
    rd = open_run_data(store)
    seq = as_sequences(rd, 2)
    assert len(seq) == 8 and seq.labels.shape == (8, 2)
    assert (seq.labels == seq.labels[:, :1]).all()        # one label per recording
    x, y = seq.dataset[3]
    assert x.shape == (2, 4, 2, 200)
    first = int(seq.dataset.index[3, 0])
    torch.testing.assert_close(x[0], rd.dataset[first][0])
    assert np.diff(rd.dataset.starts[:5]).tolist() == [400] * 4


def test_sequence_forward_gives_one_output_per_window():
    calls = []

    def model(x):                                          # (B, L, C, P, S) -> (B, L, 1)
        calls.append(tuple(x.shape[:2]))
        return x.mean(dim=(2, 3, 4)).unsqueeze(-1)

    x = torch.randn(7, 4, 2, 200)
    out = sequence_forward(model, 3)(x)
    assert calls == [(2, 3), (1, 1)] and out.shape == (7, 1)
    torch.testing.assert_close(out[:, 0], x.mean(dim=(1, 2, 3)))
    # a gap after window 1 (window rejected): pieces (0, 1), (2, 3, 4), (5, 6)
    calls.clear()
    starts = np.array([0, 400, 1200, 1600, 2000, 2400, 2800])
    assert [p.tolist() for p in prediction_pieces(starts, 7, 3)] == [[0, 1], [2, 3, 4], [5, 6]]
    out = sequence_forward(model, 3, batch_size=1)(x, starts)
    assert sorted(calls) == [(1, 2), (1, 2), (1, 3)]
    torch.testing.assert_close(out[:, 0], x.mean(dim=(1, 2, 3)))


def test_in_memory_sequences_stay_within_a_subject():
    x, y = arrays(10)
    subject = np.array(["s1"] * 5 + ["s2"] * 5)
    rd = RunData.from_arrays(x, y, CHANNELS, subject=subject)      # no recording ids
    seq = as_sequences(rd, 4)
    assert seq.dataset.index.tolist() == [[0, 1, 2, 3], [5, 6, 7, 8]]
    assert seq.groups["subject"].tolist() == ["s1", "s2"]
    assert labelled_indices(np.zeros(0, dtype=np.int64)).tolist() == []
