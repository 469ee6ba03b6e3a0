"""The demo's data rules on synthetic windows: no test window in the pretraining corpus, the
splits of each task kind, and hours of EEG with overlapping windows counted once."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from csbrain.demo.data import (
    covered_hours,
    pretraining_corpus,
    subsample,
    task_split,
    time_fractions,
)
from csbrain.demo.plan import HOLDOUT_FROM, PLANS, DemoTask

CHANNELS = ["Fz", "F3", "F4", "C3", "C4", "O1", "O2"]

P = 10                      # 10-s windows
STEP = 5 * 200              # every 5 s: consecutive windows overlap by half


def windows(n_per_rec=20, subjects=("s01", "s02"), split=None):
    """Continuous-style windows of two recordings, 10 s long every 5 s, labels alternating."""
    recs = [f"rec-{s}" for s in subjects]
    n = n_per_rec * len(recs)
    start = np.tile(np.arange(n_per_rec) * STEP, len(recs))
    duration = (n_per_rec - 1) * STEP / 200 + P          # the last window ends the recording
    return SimpleNamespace(
        x=np.random.default_rng(0).standard_normal((n, len(CHANNELS), P, 200)).astype(np.float32),
        y=np.arange(n) % 2, start=start,
        recording=np.repeat(recs, n_per_rec), subject=np.repeat(list(subjects), n_per_rec),
        split=np.full(n, "" if split is None else split, dtype=object),
        duration_s={r: duration for r in recs},
        ch_names=list(CHANNELS))


def test_covered_hours_counts_overlaps_once():
    lw = windows(n_per_rec=20)
    keep = np.ones(len(lw.y), bool)
    # 20 windows of 10 s every 5 s cover 5 * 19 + 10 = 105 s per recording
    assert covered_hours(lw, keep) == pytest.approx(2 * 105 / 3600)
    keep[1::2] = False                                   # every other window: no overlap left
    assert covered_hours(lw, keep) == pytest.approx(2 * 10 * 10 / 3600)


def test_pretraining_corpus_reads_every_channel_before_the_holdout_point():
    lw = windows()
    short = windows(subjects=("s03",))
    short.x, short.ch_names = short.x[:, :3], CHANNELS[:3]
    data, summary = pretraining_corpus({"face13:continuous": lw, "nap": short})
    _, end = time_fractions(lw)
    kept = end <= HOLDOUT_FROM["face13"] + 1e-9
    assert len(data[0]) == kept.sum() == summary[0]["kept"] and 0 < len(data[0]) < len(lw.y)
    assert np.array_equal(data[0].dataset.tensors[0].numpy(), lw.x[kept])
    assert data[0].montage.n_chans == 7 and summary[0]["channels"] == 7
    assert summary[0]["last_end"] <= HOLDOUT_FROM["face13"] + 1e-9
    assert summary[0]["window_hours"] > summary[0]["hours"] > 0
    # nap is held out from 1.0: every window, its own 3 channels
    assert len(data[1]) == len(short.y) and data[1].montage.n_chans == 3
    assert (np.asarray(data[0].labels) == -1).all()


def test_subsample_is_seeded_and_keeps_montages():
    data, _ = pretraining_corpus({"nap": windows()})
    a, b = subsample(data, 0.25, seed=0), subsample(data, 0.25, seed=0)
    assert len(a[0]) == round(0.25 * len(data[0]))
    assert np.array_equal(a[0].dataset.tensors[0].numpy(), b[0].dataset.tensors[0].numpy())
    assert a[0].montage == data[0].montage
    with pytest.raises(ValueError, match="fraction"):
        subsample(data, 0.0, seed=0)


def test_held_out_matches_the_pretraining_split():
    """The diagnostics' windows are the ones ``pretrain`` holds out, per source."""
    from csbrain.configio import load_config
    from csbrain.demo.pretraining import held_out
    from csbrain.engine.corpus import open_corpus
    from csbrain.engine.splits import holdout_indices
    from csbrain.train import PretrainConfig

    short = windows(subjects=("s03",))
    short.x, short.ch_names = short.x[:, :3], CHANNELS[:3]
    data, _ = pretraining_corpus({"nap": windows(), "face13:continuous": short})
    cfg = load_config(PretrainConfig, None, ["val_fraction=0.2", "val_by=window"])
    val = held_out(data, cfg)
    corpus = open_corpus(data)
    _, want = holdout_indices(corpus.holdout_groups["window"], 0.2, cfg.split_seed)
    got = np.concatenate([v + off for v, off in zip(val, [0, len(data[0])])])
    assert np.array_equal(np.sort(got), np.sort(want)) and all(len(v) for v in val)


@pytest.mark.parametrize("kind", ["cross_subject", "holdout"])
def test_test_windows_start_after_the_holdout_point(kind):
    lw = windows()
    task = DemoTask("t", "t", "face13:19ch", kind, train_subject="s01", test_subject="s02")
    split = task_split(task, lw, val_fraction=0.2)
    start, end = time_fractions(lw)
    cut = HOLDOUT_FROM["face13"]
    test = split == "test"
    assert test.any() and (start[test] >= cut - 1e-9).all()
    # pretraining reads windows ending before the cut: never a test window
    assert not (test & (end <= cut + 1e-9)).any()
    assert {"train", "val"} <= set(split[~test])
    if kind == "cross_subject":
        assert set(lw.subject[test]) == {"s02"}
        assert set(lw.subject[(split == "train") | (split == "val")]) == {"s01"}
    else:
        assert (end[(split == "train") | (split == "val")] <= cut + 1e-9).all()


def test_official_split_and_bad_split_kind():
    lw = windows(split="train")
    lw.split[::4] = "test"
    split = task_split(DemoTask("t", "t", "x", "official"), lw, val_fraction=0.2)
    assert ((split == "test") == (lw.split == "test")).all()
    with pytest.raises(ValueError, match="split='random' is not one of"):
        task_split(DemoTask("t", "t", "face13", "random"), lw, val_fraction=0.2)


def test_bad_jobs_is_refused_before_anything_is_written(tmp_path):
    from csbrain.demo.run import run_demo

    with pytest.raises(ValueError, match="jobs must be >= 1, got 0"):
        run_demo(tmp_path / "demo", quick=True, jobs=0)
    assert not (tmp_path / "demo").exists()


@pytest.mark.parametrize("name", sorted(PLANS))
def test_plans_are_valid_run_configs(name):
    """Every size the demo runs is a valid config; pretraining holds windows out (the curve
    the pretraining figure labels with that fraction)."""
    from csbrain.configio import load_config
    from csbrain.demo.run import _overrides
    from csbrain.train import FinetuneConfig, PretrainConfig

    plan = PLANS[name]
    pre = load_config(PretrainConfig, None, _overrides(plan.model, plan.pretrain))
    assert 0 < pre.val_fraction < 1 and pre.select() == "auto"
    ft = load_config(FinetuneConfig, None, _overrides(plan.model, plan.finetune))
    assert ft.model_config == pre.model_config
